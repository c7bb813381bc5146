package io.probestream.service.web;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;

/** Debian's chromium, headless, driven through Debian's chromedriver (never downloaded). */
public final class HeadlessChromium {
  private HeadlessChromium() {}

  /** A new browser of 1400 × 2000 pixels; the caller quits it. */
  public static WebDriver start() {
    Path chromium = Path.of("/usr/bin/chromium");
    Path driver = Path.of("/usr/bin/chromedriver");
    assertThat(chromium)
        .as("Debian's chromium (apt-get install chromium chromium-driver; .ci/run does)")
        .exists();
    assertThat(driver).as("Debian's chromedriver (apt-get install chromium-driver)").exists();
    ChromeOptions options = new ChromeOptions();
    options.setBinary(chromium.toFile());
    options.addArguments(
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2000");
    ChromeDriverService service =
        new ChromeDriverService.Builder().usingDriverExecutable(driver.toFile()).build();
    return new ChromeDriver(service, options);
  }
}
