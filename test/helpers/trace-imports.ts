// Loaded with `node --import` by tests that check what a command loads: registers trace-hooks.js.
import { register } from 'node:module';

register('./trace-hooks.js', import.meta.url);
