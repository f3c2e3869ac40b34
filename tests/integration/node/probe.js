// SPDX-License-Identifier: MIT
// Copyright (c) 2026 The pgktls developers
//
// node-postgres through pgktls: verify-full TLS, a query, and a query cancel.
// Usage: node probe.js PORT CA_FILE     (prints one line per step)
//        node probe.js PORT CA_FILE end-at-once
//            end() right after connect(): node-postgres then sends Terminate before its
//            SSLRequest, and crashes if it reads an ErrorResponse as the answer.
'use strict';
const fs = require('fs');
const { Client, Query } = require('pg');

const cfg = {
  host: '127.0.0.1',
  port: Number(process.argv[2]),
  user: 'alice',
  password: 'alice-pw',
  database: 'postgres',
  // Verified against the test CA, by name: the equivalent of libpq's verify-full.
  ssl: { ca: fs.readFileSync(process.argv[3]), servername: 'localhost', rejectUnauthorized: true },
  connectionTimeoutMillis: 10000,
};

async function main() {
  const c = new Client(cfg);
  await c.connect();
  const r = await c.query('select current_user as u, 6 * 7 as n');
  console.log(`query ${r.rows[0].u} ${r.rows[0].n} ${c.connection.stream.getProtocol()}`);

  const q = new Query('select pg_sleep(30)');
  const done = new Promise((resolve) => {
    q.on('error', (e) => resolve(e));
    q.on('end', () => resolve(null));
  });
  const t0 = Date.now();
  c.query(q);
  setTimeout(() => {
    // node-postgres sends the CancelRequest in plaintext on a new connection.
    const canceller = new Client(cfg);
    canceller.connection.on('error', () => {});
    canceller.cancel(c, q);
  }, 1000);
  const err = await done;
  const took = Date.now() - t0;
  console.log(`cancel ${err ? err.code : 'none'} ${took < 10000 ? 'quickly' : `after ${took} ms`}`);
  const r2 = await c.query('select 1 as one');
  console.log(`after ${r2.rows[0].one}`);
  await c.end();
}

// Prints "ended" once end() resolves and the process is still alive 500 ms later. Like an
// application that does not wait for connect(), nothing handles its promise: an error
// there (an ErrorResponse taken as the answer to the SSLRequest) is an unhandled
// rejection, which ends the process.
async function endAtOnce() {
  const c = new Client(cfg);
  c.connect();
  await c.end();
  await new Promise((resolve) => setTimeout(resolve, 500));
  console.log('ended');
}

(process.argv[4] === 'end-at-once' ? endAtOnce : main)().catch((e) => {
  console.log(`error ${e.code || ''} ${e.message}`);
  process.exit(1);
});
