# The `secrets` request: the function's secrets as files, replaced whole and never half-written.
# protocol/loader.ts, "Secrets": each value a file of the folder (0400), written to a temporary name and
# renamed over the old one; files not in `keep` removed. The folder is 0500 between writes.


def _secrets_problem(msg):
    directory, files, keep = msg.get("dir"), msg.get("files"), msg.get("keep")
    if type(directory) is not str or not directory.startswith("/"):
        return "dir: an absolute path"
    if type(keep) is not list or not all(type(n) is str and SECRET_NAME.match(n) for n in keep):
        return "keep: a list of names"
    if type(files) is not dict:
        return "files: an object of base64 strings"
    for name, value in files.items():
        if name not in keep:
            return "files: %s is not in keep" % json.dumps(name[:64])
        if type(value) is not str or not BASE64.match(value) or len(value) % 4:
            return "files: an object of base64 strings"
    return None


def _write_secrets(directory, files, keep):
    os.chmod(directory, 0o700)
    try:
        for name, value in files.items():
            tmp = os.path.join(directory, "." + name + ".tmp")  # a name never starts with a dot
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            data = base64.b64decode(value)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            os.rename(tmp, os.path.join(directory, name))
        wanted = set(keep)
        for f in os.listdir(directory):
            if f not in wanted:
                p = os.path.join(directory, f)
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    os.unlink(p)
    finally:
        os.chmod(directory, 0o500)
