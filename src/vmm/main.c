/* kumo-vmm: one virtual machine, one process. Takes `kumo run`'s options. */
#include "kumo/cli.h"

int main(int argc, char **argv)
{
	return cmd_run(argc, argv);
}
