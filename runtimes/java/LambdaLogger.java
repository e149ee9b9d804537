// AWS Lambda's LambdaLogger (aws-lambda-java-core): what it logs goes into the call's logs.
package com.amazonaws.services.lambda.runtime;

public interface LambdaLogger {
  void log(String message);

  void log(byte[] message);
}
