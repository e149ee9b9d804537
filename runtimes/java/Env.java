// The environment a function sees: a load's variables for as long as it is loaded, a call's for that call
// only. Java cannot change its own environment, so the map behind System.getenv() is changed in place
// (the JVM starts with java.util opened to this loader for it).
package zfaas;

import java.lang.reflect.Field;
import java.util.HashMap;
import java.util.Map;

final class Env {
  private static Map<String, String> writable;

  @SuppressWarnings("unchecked")
  private static synchronized Map<String, String> map() {
    if (writable == null) {
      try {
        Map<String, String> env = System.getenv();
        Field f = env.getClass().getDeclaredField("m");
        f.setAccessible(true);
        writable = (Map<String, String>) f.get(env);
      } catch (ReflectiveOperationException | RuntimeException e) {
        throw new IllegalStateException("cannot set environment variables (start the JVM with --add-opens java.base/java.util=ALL-UNNAMED): " + e);
      }
    }
    return writable;
  }

  // Sets each variable; returns what to put back afterwards (null: it was unset).
  static Map<String, String> apply(Map<String, String> vars) {
    Map<String, String> before = new HashMap<>();
    Map<String, String> m = map();
    for (Map.Entry<String, String> e : vars.entrySet()) {
      before.put(e.getKey(), m.get(e.getKey()));
      m.put(e.getKey(), e.getValue());
    }
    return before;
  }

  static void restore(Map<String, String> before) {
    Map<String, String> m = map();
    for (Map.Entry<String, String> e : before.entrySet()) {
      if (e.getValue() == null) m.remove(e.getKey());
      else m.put(e.getKey(), e.getValue());
    }
  }

  private Env() {}
}
