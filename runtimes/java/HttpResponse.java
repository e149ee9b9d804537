// Google Cloud Functions' HttpResponse (functions-framework-api), as the loader gives it to a function.
package com.google.cloud.functions;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStream;
import java.util.List;
import java.util.Map;
import java.util.Optional;

public interface HttpResponse {
  void setStatusCode(int code);

  void setStatusCode(int code, String message);

  void setContentType(String contentType);

  Optional<String> getContentType();

  void appendHeader(String header, String value);

  Map<String, List<String>> getHeaders();

  OutputStream getOutputStream() throws IOException;

  BufferedWriter getWriter() throws IOException;
}
