import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeDb } from '../src/config.js';

test('describeDb masks the password wherever libpq takes it: userinfo, ?password=, ?sslpassword=', () => {
  assert.equal(describeDb('postgres://u:secret@db:5432/x'), 'postgres://u:***@db:5432/x');
  assert.equal(describeDb('postgres://u@db/x?password=secret&sslmode=require'), 'postgres://u@db/x?password=***&sslmode=require');
  assert.equal(describeDb('postgresql://u@db/x?sslpassword=secret&sslkey=/k'), 'postgresql://u@db/x?sslpassword=***&sslkey=%2Fk');
  assert.equal(describeDb('CADB.db'), 'CADB.db');
});
