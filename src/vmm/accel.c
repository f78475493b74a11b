/* Choosing an engine. */
#include "kumo/accel.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct { const char *name; enum accel_kind kind; } kinds[] = {
	{ "auto", ACCEL_AUTO }, { "kvm", ACCEL_KVM }, { "emu", ACCEL_EMU },
};

int accel_parse(const char *s, enum accel_kind *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (!strcmp(s, kinds[i].name)) {
			*out = kinds[i].kind;
			return 0;
		}
	}
	return -EINVAL;
}

static bool cpu_has_hw_virt(void)
{
	char line[4096];
	bool found = false;
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags", 5))
			found = strstr(line, " vmx") || strstr(line, " svm");
	fclose(f);
	return found;
}

enum kvm_backing kvm_probe_backing(void)
{
	if (access("/dev/kvm", F_OK))
		return KVM_ABSENT;
	if (!access("/sys/module/kvm_intel", F_OK) || !access("/sys/module/kvm_amd", F_OK))
		return cpu_has_hw_virt() ? KVM_HARDWARE : KVM_UNKNOWN;
	if (!access("/sys/module/kvm_pvm", F_OK))
		return KVM_PVM;
	return KVM_UNKNOWN;
}

int accel_select(enum accel_kind kind, struct accel_choice *out, const char **err_msg)
{
	enum kvm_backing backing = kvm_probe_backing();

	switch (kind) {
	case ACCEL_EMU:
#ifdef KUMO_HAVE_EMU
		out->ops = &emu_accel_ops;
		out->why = "x86-64 in software (in progress: Linux does not boot on it yet)";
		return 0;
#else
		*err_msg = "this kumo was built without the emu engine";
		return -ENOTSUP;
#endif
	case ACCEL_KVM:
	case ACCEL_AUTO:
		out->ops = &kvm_accel_ops;
		if (backing == KVM_HARDWARE)
			out->why = "hardware virtualization";
		else if (backing == KVM_PVM)
			/* Until the emu engine lands, auto still picks kvm here. */
			out->why = "PVM, no hardware virtualization: a stock Linux kernel runs "
				   "emulated at ~4 MIPS and boots very slowly";
		else if (backing == KVM_ABSENT)
			out->why = "no /dev/kvm";
		else
			out->why = "unknown backing";
		return 0;
	}
	*err_msg = "unknown engine";
	return -EINVAL;
}
