// AWS Lambda's Context interface (aws-lambda-java-core), so Lambda-style handlers compile without AWS's jar.
package com.amazonaws.services.lambda.runtime;

public interface Context {
  String getAwsRequestId();

  String getLogGroupName();

  String getLogStreamName();

  String getFunctionName();

  String getFunctionVersion();

  String getInvokedFunctionArn();

  Object getIdentity();

  Object getClientContext();

  int getRemainingTimeInMillis();

  int getMemoryLimitInMB();

  LambdaLogger getLogger();
}
