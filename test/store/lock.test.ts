import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { WriterLock } from '../../src/store/lock.js';
import { ROOT, tempDir } from '../helpers/run.js';

const TRIALS = 50;
const tmp = tempDir('liteboot-lock-');
after(tmp.cleanup);
let n = 0;
const freshDb = () => {
  const d = join(tmp.dir, `db-${n++}`);
  mkdirSync(d);
  return join(d, 'CADB.db');
};

/** A contender process (test/helpers/lock-contender.ts) and the lines it prints, one at a time. */
class Contender {
  private readonly lines: string[] = [];
  private readonly waiting: ((l: string) => void)[] = [];
  readonly child: ChildProcess;

  constructor() {
    this.child = spawn(process.execPath, [join(ROOT, 'dist', 'test', 'helpers', 'lock-contender.js'), freshDb()], { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      const w = this.waiting.shift();
      if (w) w(l);
      else this.lines.push(l);
    });
  }

  next(): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    return new Promise((r) => this.waiting.push(r));
  }

  send(line: string): void {
    this.child.stdin!.write(line + '\n');
  }
}

/** A PID no process has now: a child that has exited (checked, in case it was reused). */
function deadPid(): number {
  for (;;) {
    const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const pid = Number(r.stdout);
    try {
      process.kill(pid, 0);
    } catch {
      return pid;
    }
  }
}

describe('the writer lock, two processes at the same instant', () => {
  let a: Contender;
  let b: Contender;
  before(async () => {
    a = new Contender();
    b = new Contender();
    assert.equal(await a.next(), 'ready');
    assert.equal(await b.next(), 'ready');
  });
  after(() => {
    a.child.stdin!.end();
    b.child.stdin!.end();
  });

  async function trials(prepare: (db: string) => void): Promise<{ held: number; refused: number }> {
    let held = 0;
    let refused = 0;
    for (let i = 0; i < TRIALS; i++) {
      const db = freshDb();
      prepare(db);
      // Both leave a busy wait at the same wall-clock millisecond, then open the store.
      const at = Date.now() + 30;
      a.send(`open ${db} ${at}`);
      b.send(`open ${db} ${at}`);
      const answers = await Promise.all([a.next(), b.next()]);
      const holders = [a, b].filter((_, k) => answers[k] === 'held');
      assert.equal(holders.length, 1, `trial ${i}: exactly one process holds the lock (answers: ${answers.join(', ')})`);
      assert.deepEqual(answers.filter((x) => x !== 'held'), ['refused DB_LOCKED'], `trial ${i}`);
      holders[0]!.send('close');
      assert.equal(await holders[0]!.next(), 'closed');
      assert.equal(existsSync(`${db}.lock`), false, `trial ${i}: the holder released the lock`);
      assert.deepEqual(readdirSync(join(db, '..')).filter((f) => f.includes('.lock')), [], `trial ${i}: no temporary or takeover file is left`);
      held++;
      refused++;
    }
    return { held, refused };
  }

  test(`no lock file: ${TRIALS} trials, one holder each`, async () => {
    const r = await trials(() => {});
    assert.deepEqual(r, { held: TRIALS, refused: TRIALS });
  });

  test(`a stale lock (a dead PID): ${TRIALS} trials, one holder each`, async () => {
    const pid = deadPid();
    const r = await trials((db) => writeFileSync(`${db}.lock`, `${pid}\n`));
    assert.deepEqual(r, { held: TRIALS, refused: TRIALS });
  });

  test(`a stale empty lock (left by a crash an hour ago): ${TRIALS} trials, one holder each`, async () => {
    const r = await trials((db) => {
      writeFileSync(`${db}.lock`, '');
      const old = new Date(Date.now() - 3600_000);
      utimesSync(`${db}.lock`, old, old);
    });
    assert.deepEqual(r, { held: TRIALS, refused: TRIALS });
  });
});

describe('the writer lock, in one process', () => {
  test('a fresh empty or partial lock file is held by someone writing it, not stale', () => {
    for (const content of ['', '12']) {
      const db = freshDb();
      writeFileSync(`${db}.lock`, content);
      assert.throws(() => WriterLock.acquire(db), (e: Error & { code?: string }) => e.code === 'DB_LOCKED' && /still being written/.test(e.message));
      assert.equal(existsSync(`${db}.lock`), true, 'left alone');
    }
  });

  test('a live holder is named; the lock file is 0600 whatever the umask', () => {
    const db = freshDb();
    const old = process.umask(0);
    let lock: WriterLock;
    try {
      lock = WriterLock.acquire(db);
    } finally {
      process.umask(old);
    }
    assert.equal(statSync(`${db}.lock`).mode & 0o777, 0o600);
    assert.throws(() => WriterLock.acquire(db), /in use by process \d+/);
    lock.release();
    assert.equal(existsSync(`${db}.lock`), false);
  });
});
