// The loader protocol's constants as this loader uses them (protocol/loader.ts is the specification;
// runtimes/java/protocol.test.ts fails while these differ from it).
package zfaas;

import java.util.regex.Pattern;

final class Protocol {
  static final int VERSION = 2;
  static final int RESULT_LIMIT = 6291456;
  static final int LOG_LIMIT = 65536;
  static final String LINE_ENV = "ZFAAS_LINE";
  static final Pattern ENV_NAME = Pattern.compile("^(?:[A-Za-z_][A-Za-z0-9_]*)$");
  static final Pattern HEADER_TOKEN = Pattern.compile("^(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$");
  static final Pattern SECRET_NAME = Pattern.compile("^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,63})$");
  static final Pattern BASE64 = Pattern.compile("^(?:[A-Za-z0-9+/]*={0,2})$");

  private Protocol() {}
}
