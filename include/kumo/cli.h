/* kumo's commands, git-style: one function per command. */
#ifndef KUMO_CLI_H
#define KUMO_CLI_H

int cmd_run(int argc, char **argv);
int cmd_img(int argc, char **argv);   /* src/cli/img.c */

#endif
