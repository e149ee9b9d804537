// The `secrets` request: the function's secrets as files, replaced whole and never half-written.
// protocol/loader.ts, "Secrets": each value a file of the folder (0400), written to a temporary name and
// renamed over the old one; files not in `keep` removed. The folder is 0500 between writes.

function secretsProblem(msg) {
  if (typeof msg.dir !== 'string' || !msg.dir.startsWith('/')) return 'dir: an absolute path';
  if (!Array.isArray(msg.keep) || !msg.keep.every((n) => typeof n === 'string' && SECRET_NAME.test(n))) return 'keep: a list of names';
  if (!msg.files || typeof msg.files !== 'object' || Array.isArray(msg.files)) return 'files: an object of base64 strings';
  for (const [name, value] of Object.entries(msg.files)) {
    if (!msg.keep.includes(name)) return `files: ${JSON.stringify(name.slice(0, 64))} is not in keep`;
    if (typeof value !== 'string' || !BASE64.test(value) || value.length % 4 !== 0) return 'files: an object of base64 strings';
  }
  return null;
}

function writeSecrets(dir, files, keep) {
  fs.chmodSync(dir, 0o700);
  try {
    for (const name of Object.keys(files)) {
      const tmp = path.join(dir, `.${name}.tmp`); // a name never starts with a dot
      fs.rmSync(tmp, { force: true });
      const data = Buffer.from(files[name], 'base64');
      const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o400);
      try {
        for (let off = 0; off < data.length;) off += fs.writeSync(fd, data, off);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, path.join(dir, name));
    }
    const wanted = new Set(keep);
    for (const f of fs.readdirSync(dir)) if (!wanted.has(f)) fs.rmSync(path.join(dir, f), { force: true, recursive: true });
  } finally {
    fs.chmodSync(dir, 0o500);
  }
}
