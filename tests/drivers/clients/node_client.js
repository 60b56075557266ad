#!/usr/bin/env node
// Driver-matrix client: the DataStax Node.js cassandra-driver (npm, tests/drivers/package.json).
//
// Same flags, workload and JSON output as python_client.py and gocql_client/main.go; see README.md.
// Run from anywhere: it resolves cassandra-driver from tests/drivers/node_modules.
//
// Negotiated protocol: `client.controlConnection.protocolVersion` after connect(). The control
// connection starts at maxVersion (default DSE_V2 = 0x42), downgrades on PROTOCOL_ERROR, and then
// lowers itself to the highest version every known host supports; pool connections are created
// with that version. Cross-checked against the version of each open pool connection.
// Compression: this driver has none (no COMPRESSION key in its STARTUP, no lz4/snappy code), so
// the negotiated compression is always "none" and --compression lz4|snappy is "unsupported".
'use strict';

const path = require('path');
const fs = require('fs');

const EXIT = { ok: 0, workload: 1, connect: 2, unsupported: 3, usage: 4 };
const START = process.hrtime.bigint();
const result = {
  driver: 'node-cassandra-driver (unknown version)',
  ok: false,
  protocol_version: null,
  compression: null,
  requested_protocol: null,
  requested_compression: null,
  phase: 'setup',
  batch_children: 'prepared+prepared',
  written: [],
  read_back_ok: 0,
  errors: [],
  driver_warnings: [],
  negotiation: [],
  elapsed_s: 0,
};
let emitted = false;

function emit(code) {
  if (emitted) return;
  emitted = true;
  result.elapsed_s = Math.round(Number(process.hrtime.bigint() - START) / 1e6) / 1000;
  // Exit only after stdout drained (it may be a pipe), never before.
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(code));
}

function fail(code, msg) {
  result.errors.push(msg);
  emit(code);
}

function parseArgs(argv) {
  const spec = {
    'contact-points': null, port: '9042', protocol: 'default', compression: 'none', username: null,
    password: null, 'tls-ca': null, 'tls-cert': null, 'tls-key': null, 'tls-server-name': null,
    keyspace: null, table: null, rows: '10', label: null, 'timeout-s': '30',
  };
  const a = { 'no-verify-hostname': false };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) throw new Error(`unexpected argument ${argv[i]}`);
    const [, name, inline] = m;
    if (name === 'no-verify-hostname') { a[name] = true; continue; }
    if (!(name in spec)) throw new Error(`unknown flag --${name}`);
    const v = inline !== undefined ? inline : argv[++i];
    if (v === undefined) throw new Error(`--${name} needs a value`);
    a[name] = v;
  }
  for (const [k, d] of Object.entries(spec)) if (!(k in a)) a[k] = d;
  for (const k of ['contact-points', 'keyspace', 'table', 'label'])
    if (a[k] === null) throw new Error(`--${k} is required`);
  if (!['default', '3', '4', '5', 'dse1', 'dse2'].includes(a.protocol)) throw new Error(`bad --protocol ${a.protocol}`);
  if (!['none', 'lz4', 'snappy'].includes(a.compression)) throw new Error(`bad --compression ${a.compression}`);
  if ((a.username === null) !== (a.password === null)) throw new Error('--username and --password go together');
  if ((a['tls-cert'] === null) !== (a['tls-key'] === null)) throw new Error('--tls-cert and --tls-key go together');
  if ((a['tls-cert'] || a['tls-server-name'] || a['no-verify-hostname']) && !a['tls-ca'])
    throw new Error('TLS options need --tls-ca');
  for (const k of ['port', 'rows', 'timeout-s']) {
    a[k] = Number(a[k]);
    if (!Number.isFinite(a[k]) || a[k] < 0) throw new Error(`bad --${k}`);
  }
  return a;
}

// Every error's own words; NoHostAvailableError carries one error per host tried.
function errorText(e) {
  if (e && e.innerErrors && typeof e.innerErrors === 'object') {
    const per = Object.entries(e.innerErrors).map(([h, ie]) =>
      `${h}: ${ie && ie.name ? ie.name : 'Error'}: ${String(ie && ie.message ? ie.message : ie).replace(/\s+/g, ' ').trim()}`);
    // The message embeds util.inspect() of the first inner error (with its stack): keep its first line.
    return `${e.name}: ${String(e.message).split('\n')[0]} {${per.join('; ')}}`;
  }
  return `${e && e.name ? e.name : 'Error'}: ${e && e.message ? e.message : e}`;
}

const lit = (s) => `'${String(s).replace(/'/g, "''")}'`;

async function main() {
  let a;
  try {
    a = parseArgs(process.argv.slice(2));
  } catch (e) {
    return fail(EXIT.usage, `usage: ${e.message}`);
  }
  result.requested_protocol = a.protocol;
  result.requested_compression = a.compression;
  setTimeout(() => fail(['setup', 'connect'].includes(result.phase) ? EXIT.connect : EXIT.workload,
    `timeout: --timeout-s ${a['timeout-s']} elapsed during ${result.phase}`), a['timeout-s'] * 1000).unref();

  let cassandra;
  try {
    cassandra = require(require.resolve('cassandra-driver', { paths: [path.join(__dirname, '..')] }));
  } catch (e) {
    return fail(EXIT.unsupported, `unsupported: cassandra-driver not installed (run scripts/setup): ${e.message}`);
  }
  const pkg = require(path.join(path.dirname(require.resolve('cassandra-driver', { paths: [path.join(__dirname, '..')] })), 'package.json'));
  result.driver = `node-cassandra-driver ${pkg.version}`;
  const { types, auth, policies } = cassandra;

  if (a.compression !== 'none')
    return fail(EXIT.unsupported, `unsupported: node cassandra-driver ${pkg.version} has no frame compression (asked for ${a.compression})`);

  const perRequestMs = Math.max(1000, Math.min(10000, a['timeout-s'] * 500));
  const options = {
    contactPoints: a['contact-points'].split(','),
    protocolOptions: { port: a.port },
    // Round robin: no localDataCenter needed (DCAware requires one with contactPoints).
    policies: { loadBalancing: new policies.loadBalancing.RoundRobinPolicy() },
    socketOptions: { connectTimeout: perRequestMs, readTimeout: perRequestMs },
    pooling: { warmup: true },
  };
  if (a.protocol !== 'default') {
    // maxVersion is the version the driver STARTs with; it is still allowed to downgrade below it
    // when the server answers PROTOCOL_ERROR (there is no "exact version" switch). The driver
    // refuses v5 here: protocolVersion.isSupported() is true only for 1-4 and DSE_V1/V2.
    options.protocolOptions.maxVersion = { 3: 3, 4: 4, 5: 5, dse1: types.protocolVersion.dseV1, dse2: types.protocolVersion.dseV2 }[a.protocol];
  }
  if (a.username !== null) options.authProvider = new auth.PlainTextAuthProvider(a.username, a.password);
  if (a['tls-ca']) {
    // The driver's default is rejectUnauthorized: false (it extends our object over that), so set it.
    const ssl = { ca: [fs.readFileSync(a['tls-ca'])], rejectUnauthorized: true };
    if (a['tls-cert']) {
      ssl.cert = fs.readFileSync(a['tls-cert']);
      ssl.key = fs.readFileSync(a['tls-key']);
    }
    if (a['tls-server-name']) ssl.servername = a['tls-server-name']; // SNI and the name checked
    if (a['no-verify-hostname']) ssl.checkServerIdentity = () => undefined; // chain still verified
    options.sslOptions = ssl;
  }

  let client;
  try {
    client = new cassandra.Client(options);
  } catch (e) {
    // Option validation, e.g. "protocolOptions.maxVersion provided (5) is invalid".
    return fail(EXIT.unsupported, `unsupported: ${errorText(e)}`);
  }
  client.on('log', (level, className, message) => {
    if ((level === 'warning' || level === 'error') && result.driver_warnings.length < 50)
      result.driver_warnings.push(`${level} ${className}: ${message}`);
    // The version dance, e.g. "Trying to use protocol version 0x42", "Protocol 0x42 not supported, using 0x4".
    if (level === 'info' && /protocol/i.test(message) && result.negotiation.length < 20)
      result.negotiation.push(`${className}: ${message}`);
  });

  result.phase = 'connect';
  try {
    await client.connect();
  } catch (e) {
    return fail(EXIT.connect, errorText(e));
  }
  const cc = client.controlConnection;
  result.protocol_version = cc.protocolVersion;
  result.compression = 'none';
  const poolVersions = new Set();
  for (const h of client.hosts.values())
    for (const c of (h.pool && h.pool.connections) || []) poolVersions.add(c.protocolVersion);
  if ([...poolVersions].some((v) => v !== cc.protocolVersion))
    result.errors.push(`pool connections speak ${[...poolVersions]}, control connection ${cc.protocolVersion}`);

  result.phase = 'workload';
  const { keyspace: ks, table: tbl, label, rows: n } = a;
  const fq = `${ks}.${tbl}`;
  const expected = new Map(); // id -> [seq, payload]; "written" grows with it (a timeout reports what was acknowledged)
  const record = (id, row) => { expected.set(id, row); result.written.push(id); };
  const step = async (what, fn) => {
    try {
      return await fn();
    } catch (e) {
      result.errors.push(`${what}: ${errorText(e)}`);
      return undefined;
    }
  };

  let ok = (await step('create keyspace', () => client.execute(
    `CREATE KEYSPACE IF NOT EXISTS ${ks} WITH replication = {'class':'SimpleStrategy','replication_factor':1}`))) !== undefined;
  ok = ok && (await step('create table', () => client.execute(
    `CREATE TABLE IF NOT EXISTS ${fq} (id text PRIMARY KEY, seq int, payload text)`))) !== undefined;
  if (ok) {
    const ins = `INSERT INTO ${fq} (id, seq, payload) VALUES (?, ?, ?)`;
    for (let i = 0; i < n; i++) {
      const id = `${label}-p-${i}`, payload = `p:${label}:${i}`;
      if (await step(`prepared insert ${id}`, () => client.execute(ins, [id, i, payload], { prepare: true })) !== undefined)
        record(id, [i, payload]);
    }
    for (let i = 0; i < n; i++) {
      const id = `${label}-s-${i}`, payload = `s:${label}:${i}`;
      const q = `INSERT INTO ${fq} (id, seq, payload) VALUES (${lit(id)}, ${i}, ${lit(payload)})`;
      if (await step(`simple insert ${id}`, () => client.execute(q)) !== undefined) record(id, [i, payload]);
    }
    // The driver cannot mix child kinds: `prepare` is per batch. With prepare: true both children
    // go as prepared ids (the literal one is prepared with no markers).
    const b0 = `${label}-b-0`, b1 = `${label}-b-1`;
    const batch = [
      { query: ins, params: [b0, 0, `b:${label}:0`] },
      { query: `INSERT INTO ${fq} (id, seq, payload) VALUES (${lit(b1)}, 1, ${lit(`b:${label}:1`)})` },
    ];
    if (await step('logged batch', () => client.batch(batch, { prepare: true, logged: true })) !== undefined) {
      record(b0, [0, `b:${label}:0`]);
      record(b1, [1, `b:${label}:1`]);
    }
  }

  const sel = `SELECT id, seq, payload FROM ${fq} WHERE id = ?`;
  let good = 0;
  for (const [id, want] of expected) {
    const rp = await step(`prepared select ${id}`, () => client.execute(sel, [id], { prepare: true }));
    const rs = await step(`simple select ${id}`, () => client.execute(`SELECT id, seq, payload FROM ${fq} WHERE id = ${lit(id)}`));
    const got = [rp, rs].map((r) => (r && r.first() ? [r.first().seq, r.first().payload] : null));
    if (got.every((g) => g && g[0] === want[0] && g[1] === want[1])) good++;
    else result.errors.push(`read back ${id}: want ${JSON.stringify(want)}, prepared ${JSON.stringify(got[0])}, simple ${JSON.stringify(got[1])}`);
  }
  result.read_back_ok = good;
  if (cc.protocolVersion !== result.protocol_version)
    result.errors.push(`protocol changed during the run: v${result.protocol_version} -> v${cc.protocolVersion}`);

  result.phase = 'done';
  result.ok = result.errors.length === 0 && good === expected.size && expected.size === 2 * n + 2;
  await client.shutdown().catch(() => {});
  emit(result.ok ? EXIT.ok : EXIT.workload);
}

main().catch((e) => fail(['setup', 'connect'].includes(result.phase) ? EXIT.connect : EXIT.workload, errorText(e)));
