/* kumo's commands, git-style: one function per command. */
#ifndef KUMO_CLI_H
#define KUMO_CLI_H

int cmd_run(int argc, char **argv);

#endif
