// The zfaas loader for Java: keeps one function loaded in this JVM and runs its calls, speaking the loader
// protocol (protocol/loader.ts; docs/loader-protocol.md) as JSON lines on the node's socket (ZFAAS_LINE), or
// on stdin/stdout without one. `--once` runs a single call (policy none): params from stdin or ZFAAS_PARAMS,
// the result on stdout. Formats: json (handler(input) returns any value), lambda (handleRequest(event,
// Context), an API Gateway HTTP API event for a web call) and gcf (Cloud Functions' service(HttpRequest,
// HttpResponse)).
package zfaas;

import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

public final class Loader {
  private final OutputStream out;
  private Function fn;
  private String format = "json";
  private Map<String, String> loadBefore = new HashMap<>(); // what the load's variables were before it set them

  private Loader(OutputStream out) {
    this.out = out;
  }

  public static void main(String[] args) throws Exception {
    OutputStream stdout = new FileOutputStream(FileDescriptor.out);
    Capture.install();
    if (args.length > 0 && args[0].equals("--once")) System.exit(Once.run(stdout));
    String line = System.getenv(Protocol.LINE_ENV);
    InputStream in;
    OutputStream out;
    if (line == null || line.isEmpty()) {
      in = System.in;
      out = stdout;
    } else {
      SocketChannel ch = dial(line);
      in = Channels.newInputStream(ch);
      out = Channels.newOutputStream(ch);
    }
    new Loader(out).serve(in);
    System.exit(0);
  }

  // The node listens before the container starts; a few tries cover a slow start.
  private static SocketChannel dial(String path) throws Exception {
    Exception last = null;
    for (int i = 0; i < 50; i++) {
      try {
        return SocketChannel.open(UnixDomainSocketAddress.of(path));
      } catch (Exception e) {
        last = e;
        Thread.sleep(100);
      }
    }
    throw last;
  }

  private void serve(InputStream in) throws Exception {
    JsonObject hello = new JsonObject();
    hello.addProperty("op", "hello");
    hello.addProperty("v", Protocol.VERSION);
    hello.addProperty("pid", ProcessHandle.current().pid());
    hello.addProperty("steady", true); // a call's variables change the map in place (Env.java): nothing grows
    send(hello);
    BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
    for (String l = r.readLine(); l != null; l = r.readLine()) {
      if (l.isBlank()) continue;
      JsonObject req;
      try {
        JsonElement e = JsonParser.parseString(l);
        if (!e.isJsonObject()) throw new Bad("a request is a JSON object");
        req = e.getAsJsonObject();
      } catch (Bad e) {
        send(error(e.getMessage(), null));
        continue;
      } catch (RuntimeException e) {
        send(error("not JSON: " + e.getMessage(), null));
        continue;
      }
      try {
        send(handle(req));
      } catch (Bad e) {
        send(error(e.getMessage(), req.has("id") && req.get("id").isJsonPrimitive() ? req.get("id").getAsNumber().intValue() : null));
      }
    }
  }

  // A request the loader cannot read: it says so and carries on.
  static final class Bad extends Exception {
    Bad(String why) {
      super(why);
    }
  }

  private JsonObject handle(JsonObject req) throws Bad {
    String op = Check.string(req, "op");
    switch (op) {
      case "ping":
        return reply("pong");
      case "load":
        return load(req);
      case "call":
        return call(req);
      case "secrets":
        return Secrets.set(req);
      default:
        throw new Bad("unknown op " + op);
    }
  }

  private JsonObject load(JsonObject req) throws Bad {
    String dir = Check.string(req, "dir");
    String handler = req.has("handler") && !req.get("handler").isJsonNull() ? Check.string(req, "handler") : null;
    Map<String, String> env = Check.env(req);
    String asked = req.has("format") ? Check.string(req, "format") : "auto";
    JsonObject r = reply("loaded");
    try {
      Env.restore(loadBefore); // a new load replaces the last one's variables
      loadBefore = Env.apply(env);
      Function f = Function.load(dir, handler);
      String chosen = asked.equals("auto") ? (f.http ? "gcf" : f.lambda ? "lambda" : "json") : asked;
      if (f.http && !chosen.equals("gcf"))
        throw new IllegalArgumentException("a service(HttpRequest, HttpResponse) method is a Cloud Functions HTTP function: format gcf, not " + chosen);
      if (!f.http && !chosen.equals("json") && !chosen.equals("lambda"))
        throw new IllegalArgumentException("the java runtime serves the formats json and lambda (and gcf for an HTTP function), not " + chosen);
      fn = f;
      format = chosen;
      r.addProperty("ok", true);
      r.addProperty("format", chosen);
    } catch (Throwable e) {
      fn = null;
      r.addProperty("ok", false);
      r.addProperty("error", cut(describe(e), Protocol.LOG_LIMIT));
    }
    return r;
  }

  private JsonObject call(JsonObject req) throws Bad {
    long t0 = System.nanoTime();
    int id = Check.id(req);
    Map<String, String> env = Check.env(req);
    JsonObject http = req.has("http") && req.get("http").isJsonObject() ? req.getAsJsonObject("http") : null;
    JsonObject r = reply("result");
    r.addProperty("id", id);
    if (fn == null) {
      r.addProperty("ok", false);
      r.addProperty("error", "no function is loaded");
      r.addProperty("logs", "");
      r.addProperty("took", took(t0));
      return r;
    }
    JsonElement params = req.has("params") ? req.get("params") : JsonNull.INSTANCE;
    Map<String, String> before = Env.apply(env);
    Capture.begin();
    try {
      String requestId = env.getOrDefault("ZFAAS_CALL", String.valueOf(id));
      boolean web = http != null && format.equals("lambda");
      String result = null;
      if (fn.http && http != null) r.add("http", Gcf.serve(fn, http).response); // the response is the answer: no value
      else if (fn.http) result = Function.GSON.toJson(Gcf.direct(fn, params));
      else {
        JsonElement input = web ? Web.lambdaEvent(http, requestId) : params;
        Object value = fn.call(input, new LambdaContext(requestId));
        JsonElement v = Function.GSON.toJsonTree(value);
        if (web) r.add("http", Web.lambdaResponse(v));
        result = Function.GSON.toJson(v);
      }
      if (result != null && result.length() > Protocol.RESULT_LIMIT) {
        result = result.substring(0, Protocol.RESULT_LIMIT);
        r.addProperty("truncated", true);
      }
      r.addProperty("ok", true);
      if (result != null) r.addProperty("result", result);
    } catch (Web.ResponseError e) {
      r.addProperty("ok", false);
      r.addProperty("fault", "response");
      r.addProperty("error", e.getMessage());
    } catch (Throwable e) {
      r.addProperty("ok", false);
      r.addProperty("error", cut(describe(e), Protocol.LOG_LIMIT));
    } finally {
      r.addProperty("logs", Capture.end());
      Env.restore(before);
    }
    long stray = ProcessHandle.current().children().filter(ProcessHandle::isAlive).count();
    if (stray > 0) r.addProperty("stray", stray);
    r.addProperty("took", took(t0));
    return r;
  }

  // A result's `took`: whole microseconds since the call was read (the node compares it with its round trip).
  static long took(long t0) {
    return Math.max(0, (System.nanoTime() - t0) / 1000);
  }

  static String describe(Throwable e) {
    String msg = e.getMessage();
    return e.getClass().getName() + (msg == null ? "" : ": " + msg);
  }

  static String stack(Throwable e) {
    StringWriter w = new StringWriter();
    e.printStackTrace(new PrintWriter(w));
    return w.toString();
  }

  static String cut(String s, int n) {
    return s.length() > n ? s.substring(0, n) : s;
  }

  static JsonObject reply(String op) {
    JsonObject r = new JsonObject();
    r.addProperty("op", op);
    return r;
  }

  private static JsonObject error(String why, Integer id) {
    JsonObject r = reply("error");
    r.addProperty("error", cut(why, Protocol.LOG_LIMIT));
    if (id != null) r.addProperty("id", id);
    return r;
  }

  private void send(JsonObject m) throws Exception {
    byte[] b = (Function.GSON.toJson(m) + "\n").getBytes(StandardCharsets.UTF_8);
    synchronized (out) {
      out.write(b);
      out.flush();
    }
  }
}
