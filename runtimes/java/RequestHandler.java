// AWS Lambda's RequestHandler (aws-lambda-java-core): a handler class may implement it, or only have the method.
package com.amazonaws.services.lambda.runtime;

public interface RequestHandler<I, O> {
  O handleRequest(I input, Context context);
}
