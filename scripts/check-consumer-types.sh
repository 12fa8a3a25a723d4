#!/usr/bin/env bash
# The published types are a product: a consumer that installs the packed tarball and imports
# every subpath must type-check under `tsc --strict` *without* skipLibCheck, so every .d.ts
# we ship is checked as a user's compiler sees it. Run after `npm run build`.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/ctk-consumer-XXXXXX)
trap 'rm -rf "$work"' EXIT
tarball=$(npm pack --silent --pack-destination "$work" | tail -n 1)
# Every subpath the package exports, so a new one is checked without editing this script.
subpaths=$(node -p 'Object.keys(require("./package.json").exports).filter((k) => k.startsWith("./") && !k.endsWith(".json")).map((k) => k.slice(2)).join(" ")')
tsc_version=$(node -p 'require("./node_modules/typescript/package.json").version')
node_types=$(node -p 'require("./node_modules/@types/node/package.json").version')
vitest_version=$(node -p 'require("./node_modules/vitest/package.json").version')
cd "$work"
cat > package.json <<JSON
{ "name": "ctk-consumer", "version": "0.0.0", "private": true, "type": "module" }
JSON
# The same compiler and Node types as this repository (and vitest, ctrkit/testing's optional peer),
# from the npm cache when it has them.
npm install --no-audit --no-fund --silent --prefer-offline "./$tarball" "typescript@$tsc_version" "@types/node@$node_types" "vitest@$vitest_version"
cat > consumer.ts <<'TS'
import { Container, Wait, type RunningContainer, type RunOptions, type WaitStrategy } from 'ctrkit';
import * as namespaces from 'ctrkit/namespaces';
import * as cgroups from 'ctrkit/cgroups';
import * as overlay from 'ctrkit/overlay';
import * as network from 'ctrkit/network';
import * as oci from 'ctrkit/oci';
import * as testing from 'ctrkit/testing';

const options: RunOptions = { command: ['true'], ports: ['0:80'], waitFor: Wait.forAll([Wait.forListeningPorts(), Wait.forHttp('/', 80)]) };
const strategy: WaitStrategy = Wait.forLogMessage(/ready/, 1);
async function use(): Promise<number> {
  const net = await network.Network.create({ name: 'consumer' });
  const c: RunningContainer = await Container.start({ ...options, network: net, aliases: ['db'], waitFor: strategy });
  return c.mappedPort(80);
}
export const all = [namespaces, cgroups, overlay, network, oci, testing, use];
TS
i=0
for sub in $subpaths; do
  echo "import * as sub$i from 'ctrkit/$sub'; export const keep$i = sub$i;" >> consumer.ts
  i=$((i + 1))
done
cat > tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "lib": ["ES2022", "ESNext.Disposable"],
    "types": ["node"], "strict": true, "skipLibCheck": false, "noEmit": true
  },
  "files": ["consumer.ts"]
}
JSON
npx tsc -p tsconfig.json
echo "consumer types: every subpath type-checks with --strict and no skipLibCheck"
