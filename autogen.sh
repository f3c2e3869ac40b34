#!/bin/sh
# Generate configure and Makefile.in; never commit their output.
set -e
cd "$(dirname "$0")"
exec autoreconf -fi
