// A function's code, loaded: its .java sources compiled (in this JVM, with the JDK's compiler) beside the
// classes and jars it brings, then its handler found. The handler setting is FILE.METHOD, FILE the class
// as a path below the function's folder (com/example/Hello.handleRequest); without one, the one class
// that declares a public handleRequest method (or else a Cloud Functions service method). handleRequest
// takes the input and, optionally, a Lambda Context: with a Context it is a Lambda handler (format
// lambda), without one a zfaas function (json). A method taking Cloud Functions' (HttpRequest,
// HttpResponse), as HttpFunction.service does, is an HTTP function (format gcf).
package zfaas;

import com.amazonaws.services.lambda.runtime.Context;
import com.google.cloud.functions.HttpRequest;
import com.google.cloud.functions.HttpResponse;
import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.ToNumberPolicy;
import java.io.File;
import java.io.IOException;
import java.io.StringWriter;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Type;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;

final class Function {
  // Whole numbers in a function's input stay whole (Long), others are Double, as JSON has them.
  static final Gson GSON =
      new GsonBuilder().serializeNulls().disableHtmlEscaping().setObjectToNumberStrategy(ToNumberPolicy.LONG_OR_DOUBLE).create();

  final Method method;
  final Object target; // null for a static method
  final boolean lambda; // takes a Context
  final boolean http; // takes Cloud Functions' (HttpRequest, HttpResponse)

  private Function(Method method, Object target) {
    this.method = method;
    this.target = target;
    this.http = isHttp(method);
    this.lambda = method.getParameterCount() == 2 && !http;
  }

  static Function load(String dir, String handler) throws Exception {
    Path root = Path.of(dir);
    if (!Files.isDirectory(root)) throw new IllegalArgumentException("the function's folder " + dir + " does not exist");
    List<Path> sources;
    List<URL> path = new ArrayList<>();
    try (Stream<Path> s = Files.walk(root)) {
      List<Path> all = s.filter(Files::isRegularFile).collect(Collectors.toList());
      sources = all.stream().filter(p -> p.toString().endsWith(".java")).collect(Collectors.toList());
      for (Path p : all) if (p.toString().endsWith(".jar")) path.add(p.toUri().toURL());
    }
    path.add(0, root.toUri().toURL());
    if (!sources.isEmpty()) path.add(0, compile(root, sources, path).toUri().toURL());
    ClassLoader loader = new URLClassLoader(path.toArray(new URL[0]), Function.class.getClassLoader());
    Method m = handler == null ? findHandleRequest(root, loader) : named(handler, loader);
    Object target = Modifier.isStatic(m.getModifiers()) ? null : m.getDeclaringClass().getDeclaredConstructor().newInstance();
    m.setAccessible(true);
    return new Function(m, target);
  }

  // The sources compiled into a folder of their own (the function's folder is read-only).
  private static Path compile(Path root, List<Path> sources, List<URL> path) throws IOException {
    JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
    if (javac == null) throw new IllegalStateException("this image has no Java compiler: ship compiled classes or a jar");
    Path out = Files.createTempDirectory("zfaas-classes-");
    Runtime.getRuntime().addShutdownHook(new Thread(() -> removeTree(out))); // a container's /tmp goes with it; a host's would not
    String cp =
        System.getProperty("java.class.path")
            + File.pathSeparator
            + path.stream().map(u -> u.getPath()).collect(Collectors.joining(File.pathSeparator));
    List<String> options = List.of("-d", out.toString(), "-cp", cp, "-nowarn", "-encoding", "UTF-8");
    StringWriter errors = new StringWriter();
    var files = javac.getStandardFileManager(null, null, null).getJavaFileObjectsFromPaths(sources);
    boolean ok = javac.getTask(errors, null, null, options, null, files).call();
    if (!ok) throw new IllegalArgumentException("the function's Java sources do not compile:\n" + errors.toString().trim());
    return out;
  }

  private static void removeTree(Path root) {
    try (Stream<Path> s = Files.walk(root)) {
      for (Path p : (Iterable<Path>) s.sorted(java.util.Comparator.reverseOrder())::iterator) Files.deleteIfExists(p);
    } catch (IOException e) {
      // the JVM is exiting: a folder left in /tmp is all that is lost
    }
  }

  private static Method named(String handler, ClassLoader loader) throws Exception {
    int dot = handler.lastIndexOf('.');
    String file = handler.substring(0, dot).replace('/', '.');
    String name = handler.substring(dot + 1);
    Class<?> c;
    try {
      c = Class.forName(file, true, loader);
    } catch (ClassNotFoundException e) {
      throw new IllegalArgumentException("the function has no class " + file + " (handler " + handler + ")");
    }
    Method found = null;
    for (Method m : c.getMethods()) if (m.getName().equals(name) && fits(m) && (found == null || m.getParameterCount() > found.getParameterCount())) found = m;
    if (found == null) throw new IllegalArgumentException("class " + file + " has no public method " + name + "(input[, Context]) or " + name + "(HttpRequest, HttpResponse)");
    return found;
  }

  // Without a handler setting: the one class declaring a public handleRequest(input[, Context]).
  private static Method findHandleRequest(Path root, ClassLoader loader) throws Exception {
    List<Method> found = new ArrayList<>();
    List<Class<?>> classes = new ArrayList<>();
    for (String cls : classNames(root, loader)) {
      Class<?> c;
      try {
        c = Class.forName(cls, false, loader);
      } catch (ClassNotFoundException | LinkageError e) {
        continue;
      }
      classes.add(c);
      for (Method m : c.getDeclaredMethods())
        if (m.getName().equals("handleRequest") && Modifier.isPublic(m.getModifiers()) && fits(m) && !m.isBridge()) found.add(m);
    }
    if (found.isEmpty())
      for (Class<?> c : classes)
        for (Method m : c.getDeclaredMethods())
          if (m.getName().equals("service") && Modifier.isPublic(m.getModifiers()) && isHttp(m) && !m.isBridge()) found.add(m);
    if (found.size() == 1) return found.get(0);
    if (found.isEmpty())
      throw new IllegalArgumentException(
          "no class of the function declares a public handleRequest(input[, Context]) or service(HttpRequest, HttpResponse): set the handler (Class.method)");
    throw new IllegalArgumentException("several classes declare handleRequest: set the handler (Class.method)");
  }

  private static boolean fits(Method m) {
    int n = m.getParameterCount();
    return n == 1 || (n == 2 && m.getParameterTypes()[1].isAssignableFrom(Context.class)) || isHttp(m);
  }

  private static boolean isHttp(Method m) {
    Class<?>[] p = m.getParameterTypes();
    return p.length == 2 && p[0] == HttpRequest.class && p[1] == HttpResponse.class;
  }

  // Runs an HTTP function with this request and response.
  void serve(HttpRequest req, HttpResponse res) throws Throwable {
    try {
      method.invoke(target, req, res);
    } catch (InvocationTargetException e) {
      throw e.getCause();
    }
  }

  // Classes of the function: from its compiled sources and its .class files.
  private static List<String> classNames(Path root, ClassLoader loader) throws IOException {
    List<String> out = new ArrayList<>();
    for (URL u : ((URLClassLoader) loader).getURLs()) {
      Path base = Path.of(u.getPath());
      if (!Files.isDirectory(base)) continue;
      try (Stream<Path> s = Files.walk(base)) {
        s.filter(p -> p.toString().endsWith(".class") && !p.getFileName().toString().contains("$"))
            .forEach(p -> out.add(base.relativize(p).toString().replaceAll("\\.class$", "").replace(File.separatorChar, '.')));
      }
    }
    return out;
  }

  // Runs it with this input (JSON), as the parameter's type asks; returns its value.
  Object call(JsonElement input, Context context) throws Throwable {
    Type t = method.getGenericParameterTypes()[0];
    Object arg = t == JsonElement.class ? input : GSON.fromJson(input, t);
    try {
      return lambda ? method.invoke(target, arg, context) : method.invoke(target, arg);
    } catch (InvocationTargetException e) {
      throw e.getCause();
    }
  }
}
