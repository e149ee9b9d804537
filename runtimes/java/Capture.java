// What a function prints during a call becomes the call's logs (the last LOG_LIMIT characters); outside a
// call, its output goes to stderr, never onto the line (which, without a socket, is stdout).
package zfaas;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

final class Capture {
  private static final PrintStream STDERR = System.err;
  private static ByteArrayOutputStream current;

  // Every later System.out / System.err write goes through here.
  static void install() {
    OutputStream sink =
        new OutputStream() {
          @Override
          public void write(int b) {
            write(new byte[] {(byte) b}, 0, 1);
          }

          @Override
          public void write(byte[] b, int off, int len) {
            synchronized (Capture.class) {
              if (current != null) current.write(b, off, len);
              else STDERR.write(b, off, len);
            }
          }
        };
    PrintStream out = new PrintStream(sink, true, StandardCharsets.UTF_8);
    System.setOut(out);
    System.setErr(out);
  }

  static synchronized void begin() {
    current = new ByteArrayOutputStream();
  }

  static synchronized String end() {
    String s = current == null ? "" : current.toString(StandardCharsets.UTF_8);
    current = null;
    return s.length() > Protocol.LOG_LIMIT ? s.substring(s.length() - Protocol.LOG_LIMIT) : s;
  }

  static void stderr(String line) {
    synchronized (Capture.class) {
      STDERR.println(line);
    }
  }

  private Capture() {}
}
