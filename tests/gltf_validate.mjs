// Validate a glTF / GLB file with the Khronos glTF validator (npm package gltf-validator) and
// print its report as JSON. Usage: node tests/gltf_validate.mjs VALIDATOR_DIR FILE
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [dir, file] = process.argv.slice(2);
const require = createRequire(path.resolve(dir, "node_modules", "gltf-validator", "package.json"));
const validator = require("./index.js");
const report = await validator.validateBytes(new Uint8Array(readFileSync(file)), {
  uri: path.basename(file), maxIssues: 100,
});
process.stdout.write(JSON.stringify(report));
