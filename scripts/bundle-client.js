// Builds dist/client.js, the client library as one ES module (spec §11): what
// `pollchat/client` imports and the server sends as /client.js, so a page
// imports one file with no further requests. tsc compiles src/client/ into
// dist/client/; this joins those modules in dependency order, dropping their
// imports of one another and every export but the entry's. No dependencies:
// the modules are written for it (named imports, no import renaming, no two
// top-level names alike), and it refuses anything else.

import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const ENTRY = join(ROOT, "dist", "client", "index.js");
const OUT = join(ROOT, "dist", "client.js");

const IMPORT = /^import \{([^}]*)\} from "(\.\/[^"]+)";$/;
const REEXPORT = /^export \{([^}]*)\} from "(\.\/[^"]+)";$/;
const DECLARATION = /^(?:export )?(?:async )?(?:function\*?|class|const|let|var) ([\w$]+)/;

const done = new Set();
const parts = [];
const names = new Map();

function add(file, isEntry) {
  if (done.has(file)) return;
  done.add(file);
  const kept = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const imported = IMPORT.exec(line) ?? REEXPORT.exec(line);
    if (imported) {
      if (imported[1].includes(" as ")) throw new Error(`${file}: renamed imports are not bundled: ${line}`);
      add(join(dirname(file), imported[2]), false);
      if (isEntry && line.startsWith("export")) kept.push(`export {${imported[1]}};`);
      continue;
    }
    if (/^(?:import|export) .* from /.test(line)) throw new Error(`${file}: an import the bundler does not know: ${line}`);
    if (!isEntry && line === "export {};") continue;
    const declared = DECLARATION.exec(line);
    if (declared) {
      if (names.has(declared[1])) throw new Error(`${declared[1]} is declared in both ${names.get(declared[1])} and ${file}`);
      names.set(declared[1], file);
    }
    kept.push(!isEntry && line.startsWith("export ") ? line.slice("export ".length) : line);
  }
  parts.push(`// ${file.slice(ROOT.length + 1)}\n${kept.join("\n").trim()}\n`);
}

add(ENTRY, true);
writeFileSync(OUT, parts.join("\n"));
