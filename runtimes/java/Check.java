// The loader checks what the node sends by hand, as the other loaders do: a field of the wrong type or an
// env name that is not one is a request it cannot read (Loader.Bad), answered with `error`.
package zfaas;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.util.HashMap;
import java.util.Map;

final class Check {
  static String string(JsonObject o, String field) throws Loader.Bad {
    JsonElement e = o.get(field);
    if (e == null || !e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) throw new Loader.Bad(field + " must be a string");
    return e.getAsString();
  }

  static int id(JsonObject o) throws Loader.Bad {
    JsonElement e = o.get("id");
    if (e == null || !e.isJsonPrimitive() || !e.getAsJsonPrimitive().isNumber()) throw new Loader.Bad("id must be a whole number from 1");
    double d = e.getAsDouble();
    if (d < 1 || d != Math.rint(d) || d > Integer.MAX_VALUE) throw new Loader.Bad("id must be a whole number from 1");
    return (int) d;
  }

  static Map<String, String> env(JsonObject o) throws Loader.Bad {
    JsonElement e = o.get("env");
    Map<String, String> out = new HashMap<>();
    if (e == null) return out;
    if (!e.isJsonObject()) throw new Loader.Bad("env must be an object");
    for (Map.Entry<String, JsonElement> v : e.getAsJsonObject().entrySet()) {
      if (!Protocol.ENV_NAME.matcher(v.getKey()).matches()) throw new Loader.Bad("env name " + v.getKey() + " is not a variable name");
      if (!v.getValue().isJsonPrimitive() || !v.getValue().getAsJsonPrimitive().isString()) throw new Loader.Bad("env " + v.getKey() + " must be a string");
      out.put(v.getKey(), v.getValue().getAsString());
    }
    return out;
  }

  private Check() {}
}
