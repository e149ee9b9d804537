// Google Cloud Functions' HttpMessage (functions-framework-api): what a request and its parts share.
package com.google.cloud.functions;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.Map;
import java.util.Optional;

public interface HttpMessage {
  Optional<String> getContentType();

  long getContentLength();

  Optional<String> getCharacterEncoding();

  InputStream getInputStream() throws IOException;

  BufferedReader getReader() throws IOException;

  Map<String, List<String>> getHeaders();

  default Optional<String> getFirstHeader(String name) {
    List<String> values = getHeaders().get(name);
    return values == null || values.isEmpty() ? Optional.empty() : Optional.of(values.get(0));
  }
}
