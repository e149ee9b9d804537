// The `secrets` request: the function's secrets as files, replaced whole and never half-written
// (protocol/loader.ts, "Secrets"): each value a file of the folder (0400), written to a temporary name and
// renamed over the old one; files not in `keep` removed. The folder is 0500 between writes.
package zfaas;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Base64;
import java.util.Comparator;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

final class Secrets {
  static JsonObject set(JsonObject req) throws Loader.Bad {
    String dir = Check.string(req, "dir");
    if (!dir.startsWith("/")) throw new Loader.Bad("dir: an absolute path");
    JsonElement k = req.get("keep");
    if (k == null || !k.isJsonArray()) throw new Loader.Bad("keep: a list of names");
    Set<String> keep = new HashSet<>();
    for (JsonElement n : k.getAsJsonArray()) {
      if (!n.isJsonPrimitive() || !n.getAsJsonPrimitive().isString() || !Protocol.SECRET_NAME.matcher(n.getAsString()).matches())
        throw new Loader.Bad("keep: a list of names");
      keep.add(n.getAsString());
    }
    JsonElement f = req.get("files");
    if (f == null || !f.isJsonObject()) throw new Loader.Bad("files: an object of base64 strings");
    for (Map.Entry<String, JsonElement> e : f.getAsJsonObject().entrySet()) {
      if (!keep.contains(e.getKey())) throw new Loader.Bad("files: " + e.getKey() + " is not in keep");
      JsonElement v = e.getValue();
      if (!v.isJsonPrimitive() || !v.getAsJsonPrimitive().isString() || !Protocol.BASE64.matcher(v.getAsString()).matches() || v.getAsString().length() % 4 != 0)
        throw new Loader.Bad("files: an object of base64 strings");
    }
    JsonObject r = Loader.reply("secretsSet");
    try {
      write(Path.of(dir), f.getAsJsonObject(), keep);
      r.addProperty("ok", true);
    } catch (IOException | RuntimeException e) {
      r.addProperty("ok", false);
      r.addProperty("error", Loader.describe(e));
    }
    return r;
  }

  private static void write(Path dir, JsonObject files, Set<String> keep) throws IOException {
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
    try {
      for (Map.Entry<String, JsonElement> e : files.entrySet()) {
        Path tmp = dir.resolve("." + e.getKey() + ".tmp"); // a name never starts with a dot
        Files.deleteIfExists(tmp);
        Files.write(
            Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("r--------"))),
            Base64.getDecoder().decode(e.getValue().getAsString()),
            StandardOpenOption.WRITE);
        Files.move(tmp, dir.resolve(e.getKey()), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
      }
      try (DirectoryStream<Path> ls = Files.newDirectoryStream(dir)) {
        for (Path p : ls) if (!keep.contains(p.getFileName().toString())) remove(p);
      }
    } finally {
      Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("r-x------"));
    }
  }

  private static void remove(Path p) throws IOException {
    if (Files.isDirectory(p) && !Files.isSymbolicLink(p)) {
      try (Stream<Path> s = Files.walk(p)) {
        for (Path x : (Iterable<Path>) s.sorted(Comparator.reverseOrder())::iterator) Files.deleteIfExists(x);
      }
    } else Files.deleteIfExists(p);
  }

  private Secrets() {}
}
