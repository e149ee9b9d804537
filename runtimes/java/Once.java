// Run-once mode (`--once`, policy none): one call, its params from stdin or ZFAAS_PARAMS, its result (JSON)
// on stdout; the function's own output goes to stderr. The function is the one in ZFAAS_DIR (default: the
// working folder), its handler ZFAAS_HANDLER (default: the one handleRequest).
package zfaas;

import com.google.gson.JsonElement;
import com.google.gson.JsonParser;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

final class Once {
  static int run(OutputStream stdout) throws Exception {
    String raw = new String(System.in.readAllBytes(), StandardCharsets.UTF_8).trim();
    if (raw.isEmpty()) raw = System.getenv().getOrDefault("ZFAAS_PARAMS", "").trim();
    if (raw.isEmpty()) raw = "{}";
    JsonElement params;
    try {
      params = JsonParser.parseString(raw);
    } catch (RuntimeException e) {
      Capture.stderr("zfaas: params are not valid JSON: " + e.getMessage());
      return 1;
    }
    String dir = System.getenv().getOrDefault("ZFAAS_DIR", System.getProperty("user.dir"));
    String handler = System.getenv("ZFAAS_HANDLER");
    Function fn;
    try {
      fn = Function.load(dir, handler == null || handler.isEmpty() ? null : handler);
    } catch (Throwable e) {
      Capture.stderr("zfaas: " + Loader.describe(e));
      return 2;
    }
    try {
      Object value = fn.http ? Gcf.direct(fn, params) : fn.call(params, new LambdaContext(System.getenv().getOrDefault("ZFAAS_CALL", "1")));
      String result = Function.GSON.toJson(Function.GSON.toJsonTree(value));
      if (result.length() > Protocol.RESULT_LIMIT + 1) result = result.substring(0, Protocol.RESULT_LIMIT + 1);
      stdout.write(result.getBytes(StandardCharsets.UTF_8));
      stdout.flush();
      return 0;
    } catch (Throwable e) {
      Capture.stderr(Loader.stack(e));
      return 1;
    }
  }

  private Once() {}
}
