// Web calls in the gcf format: a Cloud Functions HttpFunction's service(request, response) given the web
// request, and what it set and wrote as the response. A call without a web request POSTs its params as
// JSON to "/"; the body is its value, and a status from 400 up fails it. A response shaped wrongly (a
// status out of range, a header that is not a token or holds CR or LF, a body too large) is a
// Web.ResponseError.
package zfaas;

import com.google.cloud.functions.HttpRequest;
import com.google.cloud.functions.HttpResponse;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.OutputStreamWriter;
import java.net.URLDecoder;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

final class Gcf {
  static final class Answer {
    final int status;
    final byte[] body;
    final JsonObject response;

    Answer(int status, byte[] body, JsonObject response) {
      this.status = status;
      this.body = body;
      this.response = response;
    }
  }

  // The web request `h` served by the function: its response as the protocol carries it.
  static Answer serve(Function fn, JsonObject h) throws Throwable {
    Map<String, List<String>> headers = new TreeMap<>(String.CASE_INSENSITIVE_ORDER);
    for (Map.Entry<String, JsonElement> e : h.getAsJsonObject("headers").entrySet())
      headers.put(e.getKey(), List.of(e.getValue().getAsString()));
    byte[] body = Base64.getDecoder().decode(h.get("body").getAsString());
    Request req = new Request(h.get("method").getAsString(), h.get("path").getAsString(), h.get("query").getAsString(), headers, body);
    Response res = new Response();
    fn.serve(req, res);
    return res.answer();
  }

  // A call without a web request: params POSTed as JSON; the body is the value.
  static String direct(Function fn, JsonElement params) throws Throwable {
    JsonObject h = new JsonObject();
    h.addProperty("method", "POST");
    h.addProperty("path", "/");
    h.addProperty("query", "");
    JsonObject headers = new JsonObject();
    headers.addProperty("content-type", "application/json");
    h.add("headers", headers);
    h.addProperty("body", Base64.getEncoder().encodeToString(Function.GSON.toJson(params).getBytes(StandardCharsets.UTF_8)));
    Answer a = serve(fn, h);
    String text = new String(a.body, StandardCharsets.UTF_8);
    if (a.status >= 400) throw new IllegalStateException("the function answered " + a.status + ": " + Loader.cut(text, 2000));
    return text;
  }

  private static final class Request implements HttpRequest {
    private final String method;
    private final String path;
    private final String query;
    private final Map<String, List<String>> headers;
    private final byte[] body;
    private boolean read;

    Request(String method, String path, String query, Map<String, List<String>> headers, byte[] body) {
      this.method = method;
      this.path = path.isEmpty() ? "/" : path;
      this.query = query;
      this.headers = headers;
      this.body = body;
    }

    @Override
    public String getMethod() {
      return method;
    }

    @Override
    public String getUri() {
      String host = getFirstHeader("host").orElse("localhost");
      return "http://" + host + path + (query.isEmpty() ? "" : "?" + query);
    }

    @Override
    public String getPath() {
      return path;
    }

    @Override
    public Optional<String> getQuery() {
      return query.isEmpty() ? Optional.empty() : Optional.of(query);
    }

    @Override
    public Map<String, List<String>> getQueryParameters() {
      Map<String, List<String>> q = new LinkedHashMap<>();
      for (String pair : query.split("&")) {
        if (pair.isEmpty()) continue;
        int eq = pair.indexOf('=');
        String k = URLDecoder.decode(eq < 0 ? pair : pair.substring(0, eq), StandardCharsets.UTF_8);
        String v = eq < 0 ? "" : URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8);
        q.computeIfAbsent(k, x -> new ArrayList<>()).add(v);
      }
      return q;
    }

    @Override
    public Map<String, HttpPart> getParts() {
      throw new IllegalStateException("multipart requests are not supported by the zfaas java loader");
    }

    @Override
    public Optional<String> getContentType() {
      return getFirstHeader("content-type");
    }

    @Override
    public long getContentLength() {
      return body.length;
    }

    @Override
    public Optional<String> getCharacterEncoding() {
      return getContentType().flatMap(Gcf::charset);
    }

    @Override
    public InputStream getInputStream() {
      if (read) throw new IllegalStateException("the request's body has been read already");
      read = true;
      return new ByteArrayInputStream(body);
    }

    @Override
    public BufferedReader getReader() {
      Charset cs = getCharacterEncoding().map(Charset::forName).orElse(StandardCharsets.UTF_8);
      return new BufferedReader(new InputStreamReader(getInputStream(), cs));
    }

    @Override
    public Map<String, List<String>> getHeaders() {
      return headers;
    }
  }

  private static Optional<String> charset(String contentType) {
    for (String part : contentType.split(";")) {
      String p = part.trim();
      if (p.toLowerCase().startsWith("charset=")) return Optional.of(p.substring(8).replace("\"", ""));
    }
    return Optional.empty();
  }

  private static final class Response implements HttpResponse {
    private int status = 200;
    private final Map<String, List<String>> headers = new TreeMap<>(String.CASE_INSENSITIVE_ORDER);
    private final ByteArrayOutputStream body = new ByteArrayOutputStream();
    private BufferedWriter writer;

    @Override
    public void setStatusCode(int code) {
      status = code;
    }

    @Override
    public void setStatusCode(int code, String message) {
      status = code;
    }

    @Override
    public void setContentType(String contentType) {
      headers.put("content-type", new ArrayList<>(List.of(contentType)));
    }

    @Override
    public Optional<String> getContentType() {
      List<String> v = headers.get("content-type");
      return v == null || v.isEmpty() ? Optional.empty() : Optional.of(v.get(0));
    }

    @Override
    public void appendHeader(String header, String value) {
      headers.computeIfAbsent(header, x -> new ArrayList<>()).add(value);
    }

    @Override
    public Map<String, List<String>> getHeaders() {
      return headers;
    }

    @Override
    public OutputStream getOutputStream() {
      return body;
    }

    @Override
    public BufferedWriter getWriter() {
      if (writer == null) {
        Charset cs = getContentType().flatMap(Gcf::charset).map(Charset::forName).orElse(StandardCharsets.UTF_8);
        writer = new BufferedWriter(new OutputStreamWriter(body, cs));
      }
      return writer;
    }

    Answer answer() throws Exception {
      if (writer != null) writer.flush();
      if (status < 100 || status > 599) throw new Web.ResponseError("status " + status + " is not from 100 to 599");
      JsonObject hs = new JsonObject();
      for (Map.Entry<String, List<String>> e : headers.entrySet()) {
        String name = e.getKey();
        if (!Protocol.HEADER_TOKEN.matcher(name).matches()) throw new Web.ResponseError("header name " + Function.GSON.toJson(name) + " is not a valid token");
        JsonArray values = new JsonArray();
        for (String v : e.getValue()) {
          if (v == null || v.indexOf('\r') >= 0 || v.indexOf('\n') >= 0) throw new Web.ResponseError("header " + Function.GSON.toJson(name) + " contains CR or LF");
          values.add(v);
        }
        if (values.size() == 1) hs.add(name.toLowerCase(), values.get(0));
        else if (values.size() > 1) hs.add(name.toLowerCase(), values);
      }
      byte[] b = body.toByteArray();
      if (b.length > Protocol.RESULT_LIMIT) throw new TooLarge(b.length);
      JsonObject r = new JsonObject();
      r.addProperty("status", status);
      r.add("headers", hs);
      r.addProperty("body", Base64.getEncoder().encodeToString(b));
      return new Answer(status, b, r);
    }
  }

  // A body larger than a result may be: the response cannot be carried.
  static final class TooLarge extends Web.ResponseError {
    TooLarge(int bytes) {
      super("response too large: its body is " + bytes + " bytes, at most " + Protocol.RESULT_LIMIT, true);
    }
  }

  private Gcf() {}
}
