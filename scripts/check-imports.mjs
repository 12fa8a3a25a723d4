#!/usr/bin/env node
// Duplicate imports: a module imported by two declarations in one file (merge them into one,
// with inline `type` for the type-only names). Biome has no rule for it (its import sorting
// assist merges them, but enabling that would reorder every file's imports), so `npm run lint`
// runs this beside `biome lint`. Import cycles, static and dynamic, are Biome's
// `noImportCycles`; see biome.json.
//
// Usage: node scripts/check-imports.mjs [dir ...]   (default: src test scripts examples bench)
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

const roots = process.argv.slice(2).length ? process.argv.slice(2) : ['src', 'test', 'scripts', 'examples', 'bench'];
const SOURCE = /\.(?:[cm]?ts|[cm]?js)$/;

function* files(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (e.code === 'ENOENT') return;
    throw e;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules') yield* files(p);
    } else if (SOURCE.test(e.name) && !e.name.endsWith('.d.ts')) yield p;
  }
}

const findings = [];
for (const root of roots) {
  for (const file of files(root)) {
    const text = readFileSync(file, 'utf8');
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false);
    const seen = new Map();
    for (const st of sf.statements) {
      if (!ts.isImportDeclaration(st) || !ts.isStringLiteral(st.moduleSpecifier)) continue;
      // `import 'x'` (for its side effects) beside `import { y } from 'x'` is still one module twice.
      const spec = st.moduleSpecifier.text;
      const line = sf.getLineAndCharacterOfPosition(st.getStart(sf)).line + 1;
      const first = seen.get(spec);
      if (first !== undefined) findings.push(`${relative('.', file)}:${line}: '${spec}' is already imported on line ${first}; merge the two imports`);
      else seen.set(spec, line);
    }
  }
}
for (const f of findings) console.error(f);
if (findings.length) {
  console.error(`check-imports: ${findings.length} duplicate import(s)`);
  process.exit(1);
}
