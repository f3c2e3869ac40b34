/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
#include "config.h"
