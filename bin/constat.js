#!/usr/bin/env node
// The `constat` command. Sources are TypeScript run through tsx, so the command, `npm start`
// and the tests execute the same files with no build step in between.
import { register } from 'tsx/esm/api';

register();
await import('../scripts/cli.ts');
