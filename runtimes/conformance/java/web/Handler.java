// The conformance suite's lambda function (runtimes/conformance/README.md): implements AWS's
// RequestHandler, which the loader declares, so it compiles without AWS's jar.
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.Map;

public class Handler implements RequestHandler<Map<String, Object>, Map<String, Object>> {
  @Override
  @SuppressWarnings("unchecked")
  public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
    String path = (String) event.get("rawPath");
    if (path.equals("/bad")) return Map.of("statusCode", "abc");
    Map<String, Object> q = (Map<String, Object>) event.get("queryStringParameters");
    String name = q != null && q.get("name") != null ? (String) q.get("name") : "nobody";
    return Map.of("statusCode", 201, "headers", Map.of("content-type", "text/plain", "x-path", path), "body", "hello " + name);
  }
}
