// Benchmark-only reference: the same four endpoints as geoha's API, written the
// way a typical Node shop would (Express 4 + pg, one process, pool of 10).
// Env: LISTEN_HOST, LISTEN_PORT, PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE.
'use strict';
const express = require('express');
const { Pool } = require('pg');

const pool = new Pool({ max: 10 });
const app = express();
app.disable('x-powered-by');
app.disable('etag');
app.use(express.json({ limit: '64kb' }));

const COLUMNS = 'id, name, config, created_at, updated_at';

app.get('/health', (req, res) => {
  res.json({ status: 'ok', region: 'bench', instance: 'express-1' });
});

app.get('/api/v1/themes/:id', async (req, res) => {
  const id = Number(req.params.id);
  if (!Number.isSafeInteger(id) || id < 1) {
    return res.status(400).json({ error: { code: 'invalid_parameter', field: 'id', message: 'bad id' } });
  }
  try {
    const { rows } = await pool.query(`SELECT ${COLUMNS} FROM themes WHERE id = $1`, [id]);
    if (rows.length === 0) {
      return res.status(404).json({ error: { code: 'not_found', field: null, message: 'no such theme' } });
    }
    res.json(rows[0]);
  } catch (err) {
    res.status(503).json({ error: { code: 'database_unavailable', field: null, message: String(err) } });
  }
});

app.get('/api/v1/themes', async (req, res) => {
  const limit = req.query.limit === undefined ? 20 : Number(req.query.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    return res.status(400).json({ error: { code: 'invalid_parameter', field: 'limit', message: 'bad limit' } });
  }
  try {
    const { rows } = await pool.query(`SELECT ${COLUMNS} FROM themes ORDER BY id DESC LIMIT $1`, [limit + 1]);
    const items = rows.slice(0, limit);
    const next = rows.length > limit ? String(items[items.length - 1].id) : null;
    res.json({ items, next_cursor: next });
  } catch (err) {
    res.status(503).json({ error: { code: 'database_unavailable', field: null, message: String(err) } });
  }
});

app.post('/api/v1/themes', async (req, res) => {
  const body = req.body;
  if (typeof body !== 'object' || body === null || typeof body.name !== 'string' ||
      body.name.length < 1 || body.name.length > 100) {
    return res.status(422).json({ error: { code: 'validation_failed', field: 'name', message: 'bad name' } });
  }
  const config = body.config === undefined ? {} : body.config;
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    return res.status(422).json({ error: { code: 'validation_failed', field: 'config', message: 'bad config' } });
  }
  try {
    const { rows } = await pool.query(
      `INSERT INTO themes (name, config) VALUES ($1, $2) RETURNING ${COLUMNS}`,
      [body.name, JSON.stringify(config)]);
    res.status(201).location(`/api/v1/themes/${rows[0].id}`).json(rows[0]);
  } catch (err) {
    res.status(503).json({ error: { code: 'database_unavailable', field: null, message: String(err) } });
  }
});

const host = process.env.LISTEN_HOST || '127.0.0.1';
const port = Number(process.env.LISTEN_PORT || 3000);
const server = app.listen(port, host, () => console.log(`express reference on ${host}:${port}`));
process.on('SIGTERM', () => server.close(() => pool.end().then(() => process.exit(0))));
