package io.probestream.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code probestream} command: wires the subcommands, maps failures to exit codes. */
@Command(
    name = "probestream",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description =
        "Live probes of what a neural network has learned: neural collapse, feature"
            + " complexity and predictive multiplicity, offline or streaming over Kafka.",
    subcommands = {
      DemoCommand.class,
      ServeCommand.class,
      ProbeCommand.class,
      PublishCommand.class,
      TrainSimCommand.class,
      InspectCommand.class,
      CommandLine.HelpCommand.class
    })
public final class Main implements Runnable {
  /** Exit code for a failure while running (bad model, bad data). */
  public static final int FAILURE = 1;

  /** Exit code for a command line that cannot be understood. */
  public static final int USAGE = 2;

  @CommandLine.Spec CommandLine.Model.CommandSpec spec;

  @Override
  public void run() {
    throw new CommandLine.ParameterException(spec.commandLine(), "a subcommand is required");
  }

  public static void main(String[] args) {
    System.setProperty(
        "java.util.logging.SimpleFormatter.format", "%1$tH:%1$tM:%1$tS %4$s %3$s: %5$s%6$s%n");
    System.exit(run(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
  }

  /** Runs the command line with the given streams and returns the exit code; used by tests. */
  public static int run(String[] args, PrintWriter out, PrintWriter err) {
    CommandLine cl = new CommandLine(new Main());
    cl.setOut(out);
    cl.setErr(err);
    cl.setExitCodeExceptionMapper(
        e -> e instanceof CommandLine.ParameterException ? USAGE : FAILURE);
    cl.setParameterExceptionHandler(
        (ex, a) -> {
          CommandLine c = ex.getCommandLine();
          c.getErr().println("probestream: " + ex.getMessage());
          c.getErr()
              .println(
                  "Try '" + c.getCommandSpec().qualifiedName() + " --help' for more information.");
          return USAGE;
        });
    cl.setExecutionExceptionHandler(
        (ex, c, parsed) -> {
          c.getErr().println("probestream: error: " + oneLine(ex));
          if (System.getenv("PROBESTREAM_DEBUG") != null) {
            ex.printStackTrace(c.getErr());
          }
          return ex instanceof UsageException ? USAGE : FAILURE;
        });
    return cl.execute(args);
  }

  private static String oneLine(Throwable t) {
    String m = t.getMessage();
    if (m == null || m.isBlank()) {
      m = t.getClass().getSimpleName();
    }
    return m.replace('\n', ' ');
  }

  /** A command line that parses but makes no sense (exit code 2). */
  static final class UsageException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    UsageException(String message) {
      super(message);
    }
  }

  /** A failure with a message meant for the user as it is (exit code 1). */
  static final class Failure extends RuntimeException {
    private static final long serialVersionUID = 1L;

    Failure(String message, Throwable cause) {
      super(message, cause);
    }
  }

  /**
   * The build's version, git commit and build time from {@code version.properties} (filtered by the
   * build), else the jar manifest's version, else "dev"; then the Java runtime.
   */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      Properties build = new Properties();
      try (InputStream in = Main.class.getResourceAsStream("version.properties")) {
        if (in != null) {
          build.load(in);
        }
      } catch (IOException e) {
        // no build information: fall back to the manifest
      }
      String v = known(build.getProperty("version"));
      if (v == null) {
        v = Main.class.getPackage().getImplementationVersion();
      }
      List<String> details = new ArrayList<>();
      String commit = known(build.getProperty("commit"));
      if (commit != null) {
        details.add("commit " + commit);
      }
      String built = known(build.getProperty("built"));
      if (built != null) {
        details.add("built " + built);
      }
      return new String[] {
        "probestream "
            + (v == null ? "dev" : v)
            + (details.isEmpty() ? "" : " (" + String.join(", ", details) + ")"),
        "Java "
            + System.getProperty("java.version")
            + ", "
            + System.getProperty("os.name")
            + " "
            + System.getProperty("os.arch")
      };
    }

    /** The value, or null when it is blank, "unknown" or an unfiltered ${placeholder}. */
    private static String known(String value) {
      if (value == null) {
        return null;
      }
      String v = value.trim();
      return v.isEmpty() || v.equals("unknown") || v.contains("${") ? null : v;
    }
  }
}
