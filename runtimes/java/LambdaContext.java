// The Lambda context a call's handler gets: the function's name and version, the call's id as the request
// id, the time left until the call's deadline (ZFAAS_DEADLINE), and a logger into the call's logs.
package zfaas;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import java.nio.charset.StandardCharsets;

final class LambdaContext implements Context {
  private final String requestId;
  private final long deadline;

  LambdaContext(String requestId) {
    this.requestId = requestId;
    long d;
    try {
      d = Long.parseLong(System.getenv().getOrDefault("ZFAAS_DEADLINE", ""));
    } catch (NumberFormatException e) {
      d = System.currentTimeMillis() + 30_000;
    }
    this.deadline = d;
  }

  static String functionName() {
    String n = System.getenv("ZFAAS_FUNCTION");
    return n == null || n.isEmpty() ? "function" : n;
  }

  @Override
  public String getAwsRequestId() {
    return requestId;
  }

  @Override
  public String getLogGroupName() {
    return "/aws/lambda/" + functionName();
  }

  @Override
  public String getLogStreamName() {
    return "zfaas/" + getFunctionVersion();
  }

  @Override
  public String getFunctionName() {
    return functionName();
  }

  @Override
  public String getFunctionVersion() {
    String v = System.getenv("ZFAAS_VERSION");
    return v == null || v.isEmpty() ? "$LATEST" : v;
  }

  @Override
  public String getInvokedFunctionArn() {
    return "arn:aws:lambda:local:000000000000:function:" + functionName();
  }

  @Override
  public Object getIdentity() {
    return null;
  }

  @Override
  public Object getClientContext() {
    return null;
  }

  @Override
  public int getRemainingTimeInMillis() {
    return (int) Math.max(0, Math.min(Integer.MAX_VALUE, deadline - System.currentTimeMillis()));
  }

  @Override
  public int getMemoryLimitInMB() {
    try {
      return Integer.parseInt(System.getenv().getOrDefault("ZFAAS_MEMORY", "256"));
    } catch (NumberFormatException e) {
      return 256;
    }
  }

  @Override
  public LambdaLogger getLogger() {
    return new LambdaLogger() {
      @Override
      public void log(String message) {
        System.out.print(message);
      }

      @Override
      public void log(byte[] message) {
        System.out.print(new String(message, StandardCharsets.UTF_8));
      }
    };
  }
}
