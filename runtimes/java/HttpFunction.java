// Google Cloud Functions' HttpFunction (functions-framework-api), by name and shape: a class may implement
// it, or only have a public service(HttpRequest, HttpResponse). Google's jar is not needed.
package com.google.cloud.functions;

@FunctionalInterface
public interface HttpFunction {
  void service(HttpRequest request, HttpResponse response) throws Exception;
}
