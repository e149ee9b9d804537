// Google Cloud Functions' HttpRequest (functions-framework-api), as the loader gives it to a function.
package com.google.cloud.functions;

import java.util.List;
import java.util.Map;
import java.util.Optional;

public interface HttpRequest extends HttpMessage {
  String getMethod();

  String getUri();

  String getPath();

  Optional<String> getQuery();

  Map<String, List<String>> getQueryParameters();

  default Optional<String> getFirstQueryParameter(String name) {
    List<String> values = getQueryParameters().get(name);
    return values == null || values.isEmpty() ? Optional.empty() : Optional.of(values.get(0));
  }

  Map<String, HttpPart> getParts();

  interface HttpPart extends HttpMessage {
    Optional<String> getFileName();
  }
}
