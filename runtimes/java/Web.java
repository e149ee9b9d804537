// Web calls in the Lambda convention: the request as an API Gateway HTTP API event (payload 2.0), and the
// response API Gateway makes of the handler's answer. A response shaped wrongly is a ResponseError, whose
// message starts with "malformed response:" (the node answers its caller 502 for it).
package zfaas;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import java.net.URLDecoder;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Map;

final class Web {
  static class ResponseError extends Exception {
    ResponseError(String what) {
      super("malformed response: " + what);
    }

    ResponseError(String message, boolean whole) {
      super(message);
    }
  }

  static JsonObject lambdaEvent(JsonObject h, String requestId) {
    JsonObject headers = new JsonObject();
    JsonArray cookies = new JsonArray();
    for (Map.Entry<String, JsonElement> e : h.getAsJsonObject("headers").entrySet()) {
      if (e.getKey().equals("cookie")) for (String c : e.getValue().getAsString().split(";\\s*")) if (!c.isEmpty()) cookies.add(c);
      else headers.add(e.getKey(), e.getValue());
    }
    String path = h.get("path").getAsString();
    String query = h.get("query").getAsString();
    JsonObject ev = new JsonObject();
    ev.addProperty("version", "2.0");
    ev.addProperty("routeKey", "$default");
    ev.addProperty("rawPath", path);
    ev.addProperty("rawQueryString", query);
    if (cookies.size() > 0) ev.add("cookies", cookies);
    ev.add("headers", headers);
    if (!query.isEmpty()) ev.add("queryStringParameters", queryParameters(query));
    String host = headers.has("host") ? headers.get("host").getAsString().replaceAll(":\\d+$", "") : "localhost";
    long now = System.currentTimeMillis();
    JsonObject http = new JsonObject();
    http.addProperty("method", h.get("method").getAsString());
    http.addProperty("path", path);
    http.addProperty("protocol", "HTTP/1.1");
    http.addProperty("sourceIp", h.get("sourceIp").getAsString());
    http.addProperty("userAgent", headers.has("user-agent") ? headers.get("user-agent").getAsString() : "");
    JsonObject rc = new JsonObject();
    rc.addProperty("accountId", "000000000000");
    rc.addProperty("apiId", LambdaContext.functionName());
    rc.addProperty("domainName", host);
    rc.addProperty("domainPrefix", host.split("\\.")[0]);
    rc.add("http", http);
    rc.addProperty("requestId", requestId);
    rc.addProperty("routeKey", "$default");
    rc.addProperty("stage", "$default");
    rc.addProperty("timeEpoch", now);
    ev.add("requestContext", rc);
    byte[] body = Base64.getDecoder().decode(h.get("body").getAsString());
    if (body.length > 0) {
      String text = utf8(body);
      ev.addProperty("body", text != null ? text : h.get("body").getAsString());
      ev.addProperty("isBase64Encoded", text == null);
    } else ev.addProperty("isBase64Encoded", false);
    return ev;
  }

  // name=a&name=b -> {"name": "a,b"}, as API Gateway joins repeated parameters.
  private static JsonObject queryParameters(String query) {
    JsonObject q = new JsonObject();
    for (String pair : query.split("&")) {
      if (pair.isEmpty()) continue;
      int eq = pair.indexOf('=');
      String k = URLDecoder.decode(eq < 0 ? pair : pair.substring(0, eq), StandardCharsets.UTF_8);
      String v = eq < 0 ? "" : URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8);
      q.addProperty(k, q.has(k) ? q.get(k).getAsString() + "," + v : v);
    }
    return q;
  }

  private static String utf8(byte[] b) {
    try {
      return StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(b)).toString();
    } catch (CharacterCodingException e) {
      return null;
    }
  }

  // The response: {status, headers, body as base64}. A value without statusCode is the body, as JSON.
  static JsonObject lambdaResponse(JsonElement v) throws ResponseError {
    JsonObject out = new JsonObject();
    JsonObject headers = new JsonObject();
    if (v == null || !v.isJsonObject() || !v.getAsJsonObject().has("statusCode")) {
      headers.addProperty("content-type", "application/json");
      out.addProperty("status", 200);
      out.add("headers", headers);
      String text = v != null && v.isJsonPrimitive() && v.getAsJsonPrimitive().isString() ? v.getAsString() : Function.GSON.toJson(v);
      out.addProperty("body", Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.UTF_8)));
      return out;
    }
    JsonObject r = v.getAsJsonObject();
    JsonElement sc = r.get("statusCode");
    if (!sc.isJsonPrimitive() || !sc.getAsJsonPrimitive().isNumber() || sc.getAsDouble() != Math.rint(sc.getAsDouble()) || sc.getAsInt() < 100 || sc.getAsInt() > 599)
      throw new ResponseError("statusCode must be an integer from 100 to 599, got " + sc);
    out.addProperty("status", sc.getAsInt());
    JsonElement hs = r.get("headers");
    if (hs != null && !hs.isJsonNull()) {
      if (!hs.isJsonObject()) throw new ResponseError("headers must be an object, got " + hs);
      for (Map.Entry<String, JsonElement> e : hs.getAsJsonObject().entrySet()) {
        String name = e.getKey();
        if (!Protocol.HEADER_TOKEN.matcher(name).matches()) throw new ResponseError("header name " + Function.GSON.toJson(name) + " is not a valid token");
        JsonElement x = e.getValue();
        if (!x.isJsonPrimitive()) throw new ResponseError("header " + Function.GSON.toJson(name) + " must be a string or a number, got " + x);
        String value = x.getAsString();
        if (value.indexOf('\r') >= 0 || value.indexOf('\n') >= 0) throw new ResponseError("header " + Function.GSON.toJson(name) + " contains CR or LF");
        headers.add(name.toLowerCase(), new JsonPrimitive(value));
      }
    }
    JsonElement cookies = r.get("cookies");
    if (cookies != null && !cookies.isJsonNull()) {
      if (!cookies.isJsonArray()) throw new ResponseError("cookies must be an array of strings, got " + cookies);
      JsonArray set = new JsonArray();
      for (JsonElement c : cookies.getAsJsonArray()) {
        if (!c.isJsonPrimitive() || !c.getAsJsonPrimitive().isString()) throw new ResponseError("cookies must be an array of strings, got " + cookies);
        set.add(c);
      }
      if (set.size() > 0) headers.add("set-cookie", set);
    }
    out.add("headers", headers);
    byte[] body = new byte[0];
    JsonElement b = r.get("body");
    if (b != null && !b.isJsonNull()) {
      if (!b.isJsonPrimitive() || !b.getAsJsonPrimitive().isString()) throw new ResponseError("body must be a string, got " + b);
      boolean base64 = r.has("isBase64Encoded") && r.get("isBase64Encoded").isJsonPrimitive() && r.get("isBase64Encoded").getAsBoolean();
      if (base64) {
        if (!Protocol.BASE64.matcher(b.getAsString()).matches()) throw new ResponseError("body is not base64 although isBase64Encoded is true");
        body = Base64.getDecoder().decode(b.getAsString());
      } else body = b.getAsString().getBytes(StandardCharsets.UTF_8);
    }
    out.addProperty("body", Base64.getEncoder().encodeToString(body));
    return out;
  }

  private Web() {}
}
