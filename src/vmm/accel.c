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

/* What auto picks, by what backs /dev/kvm: hardware virtualization runs
 * guests at native speed; PVM (no VT-x/SVM) runs a stock kernel emulated
 * in the host kernel at ~4 MIPS, slower than kumo's own CPU. */
static const struct {
	enum kvm_backing backing;
	enum accel_kind pick;
	const char *why;
} auto_table[] = {
	{ KVM_HARDWARE, ACCEL_KVM, "hardware virtualization" },
	{ KVM_UNKNOWN, ACCEL_KVM, "/dev/kvm of unknown backing" },
	{ KVM_PVM, ACCEL_EMU, "auto: /dev/kvm is PVM without hardware virtualization" },
	{ KVM_ABSENT, ACCEL_EMU, "auto: no /dev/kvm" },
};

static const char *kvm_why(enum kvm_backing backing)
{
	switch (backing) {
	case KVM_HARDWARE: return "hardware virtualization";
	case KVM_PVM: return "PVM, no hardware virtualization: a stock Linux kernel runs "
			     "emulated at ~4 MIPS; --accel emu is faster";
	case KVM_ABSENT: return "no /dev/kvm";
	default: return "unknown backing";
	}
}

int accel_select(enum accel_kind kind, struct accel_choice *out, const char **err_msg)
{
	enum kvm_backing backing = kvm_probe_backing();
	const char *why = NULL;

	if (kind == ACCEL_AUTO) {
		kind = ACCEL_KVM;
		for (size_t i = 0; i < ARRAY_SIZE(auto_table); i++)
			if (auto_table[i].backing == backing) {
				kind = auto_table[i].pick;
				why = auto_table[i].why;
			}
#ifndef KUMO_HAVE_EMU
		kind = ACCEL_KVM;
		why = NULL;
#endif
	}
	switch (kind) {
	case ACCEL_EMU:
#ifdef KUMO_HAVE_EMU
		out->ops = &emu_accel_ops;
		out->why = why ? why : "x86-64 in software";
		return 0;
#else
		*err_msg = "this kumo was built without the emu engine";
		return -ENOTSUP;
#endif
	case ACCEL_KVM:
		out->ops = &kvm_accel_ops;
		out->why = why ? why : kvm_why(backing);
		return 0;
	case ACCEL_AUTO:
		break;
	}
	*err_msg = "unknown engine";
	return -EINVAL;
}
