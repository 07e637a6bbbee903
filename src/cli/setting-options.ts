/** Turns a settings table (config/settings.ts) into a command's options and --help: the one way for every command. */
import type { Command } from "commander";
import type { SettingTable } from "../config/settings.js";

/**
 * Adds each setting with a flag as `--flag <value>`, its help naming the variable and the default, and
 * lists after the options the settings read only from the environment.
 */
export function addSettingOptions(command: Command, table: SettingTable): Command {
  const envOnly: string[] = [];
  for (const setting of Object.values(table)) {
    const shown = setting.defaultText === "" ? "" : `, default ${setting.defaultText}`;
    if (setting.flag === null) {
      envOnly.push(`  ${setting.env}  ${setting.description}`);
      continue;
    }
    const placeholder = `<${setting.valueName ?? "value"}${setting.repeatable ? "..." : ""}>`;
    command.option(`--${setting.flag} ${placeholder}`, `${setting.description} (${setting.env}${shown})`);
  }
  if (envOnly.length > 0) {
    command.addHelpText(
      "after",
      `\nRead from the environment only (a command line shows in \`ps\`):\n${envOnly.join("\n")}`,
    );
  }
  return command;
}
