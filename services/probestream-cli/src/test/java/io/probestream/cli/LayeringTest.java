package io.probestream.cli;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.classes;
import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

/** The module layering of STYLE.md §2 that Maven cannot check on its own. */
@AnalyzeClasses(packages = "io.probestream", importOptions = ImportOption.DoNotIncludeTests.class)
class LayeringTest {
  @ArchTest
  static final ArchRule probesArePlainJava =
      noClasses()
          .that()
          .resideInAPackage("io.probestream.probes..")
          .should()
          .dependOnClassesThat()
          .resideOutsideOfPackages("java..", "io.probestream.probes..", "org.ejml..")
          .because("the service, the CLI and the benchmarks must run the same probe code");

  @ArchTest
  static final ArchRule contractsCarryNoRuntime =
      noClasses()
          .that()
          .resideInAPackage("io.probestream.contracts..")
          .should()
          .dependOnClassesThat()
          .resideInAnyPackage(
              "io.vertx..",
              "org.apache.kafka..",
              "ai.onnxruntime..",
              "io.probestream.probes..",
              "io.probestream.inference..")
          .because("external producers and the trainer build on contracts alone");

  @ArchTest
  static final ArchRule inferenceKnowsNoMessaging =
      noClasses()
          .that()
          .resideInAPackage("io.probestream.inference..")
          .should()
          .dependOnClassesThat()
          .resideInAnyPackage("io.vertx..", "org.apache.kafka..")
          .because("inference runs the same way offline and in the service");

  @ArchTest
  static final ArchRule trainerIsAnExternalJob =
      noClasses()
          .that()
          .resideInAPackage("io.probestream.trainer..")
          .should()
          .dependOnClassesThat()
          .resideInAnyPackage(
              "io.vertx..",
              "ai.onnxruntime..",
              "io.probestream.service..",
              "io.probestream.inference..",
              "io.probestream.probes..",
              "io.probestream.embedded..")
          .because(
              "the simulated trainer stands for an external training job: it builds on contracts"
                  + " alone and hands its records to a sink (the CLI wires in the Publisher)");

  @ArchTest
  static final ArchRule nothingDependsOnTheCli =
      noClasses()
          .that()
          .resideOutsideOfPackage("io.probestream.cli..")
          .should()
          .dependOnClassesThat()
          .resideInAPackage("io.probestream.cli..")
          .because("the CLI is wiring only");

  @ArchTest
  static final ArchRule serviceLeavesTestCodeAlone =
      noClasses()
          .that()
          .resideInAPackage("io.probestream.service..")
          .should()
          .dependOnClassesThat()
          .resideInAnyPackage(
              "io.probestream.testkit..", "io.probestream.embedded..", "io.probestream.trainer..")
          .because(
              "the service runs against any cluster; only the CLI wires in the embedded broker"
                  + " and the simulated trainer");

  @ArchTest
  static final ArchRule verticlesAreNamedAndPlaced =
      classes()
          .that()
          .areAssignableTo(io.vertx.core.VerticleBase.class)
          .should()
          .haveSimpleNameEndingWith("Verticle")
          .andShould()
          .resideInAPackage("io.probestream.service..")
          .because("one verticle per concern, easy to find");

  @ArchTest
  static final ArchRule noCustomOpLibraries =
      noClasses()
          .should()
          .callMethod(
              "ai.onnxruntime.OrtSession$SessionOptions",
              "registerCustomOpLibrary",
              "java.lang.String")
          .orShould()
          .callMethod(
              "ai.onnxruntime.OrtSession$SessionOptions",
              "registerCustomOpsUsingFunction",
              "java.lang.String")
          .orShould()
          .callMethod(
              "ai.onnxruntime.OrtEnvironment",
              "registerExecutionProviderLibrary",
              "java.lang.String",
              "java.lang.String")
          .because(
              "custom-op and plugin EP libraries are native code: none is ever loaded, least of"
                  + " all one a message names (DESIGN.md §7)");

  @ArchTest
  static final ArchRule noPackageCycles =
      slices().matching("io.probestream.(**)").should().beFreeOfCycles();
}
