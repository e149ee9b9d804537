// The conformance suite's json function (runtimes/conformance/README.md).
import java.util.HashMap;
import java.util.Map;

public class Echo {
  public Map<String, Object> handleRequest(Map<String, Object> params) {
    Object n = params.get("n");
    System.out.println("echo " + n);
    Object ms = params.get("ms");
    if (ms instanceof Number) {
      try {
        Thread.sleep(((Number) ms).longValue());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    if (Boolean.TRUE.equals(params.get("fail"))) throw new IllegalStateException("boom on purpose");
    Map<String, Object> out = new HashMap<>();
    out.put("n", n);
    out.put("call", System.getenv("ZFAAS_CALL"));
    out.put("greeting", System.getenv("GREETING"));
    return out;
  }
}
