/* PCI bus 0 through configuration mechanism #1 (ports 0xcf8/0xcfc):
 * config space reads and writes, finding a device, walking its
 * capability list, where its memory BARs are. */
#ifndef GUEST_PCI_H
#define GUEST_PCI_H

#include <stdbool.h>
#include <stdint.h>

#define PCI_SLOTS 32

#define PCI_VENDOR_ID   0x00
#define PCI_DEVICE_ID   0x02
#define PCI_COMMAND     0x04
#define  PCI_COMMAND_MEMORY 0x0002
#define  PCI_COMMAND_MASTER 0x0004
#define  PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS      0x06
#define  PCI_STATUS_CAP_LIST 0x0010
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0        0x10
#define PCI_CAP_PTR     0x34

#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11

/* Function 0 of slot on bus 0. off is a byte offset; 16- and 32-bit
 * accesses must be naturally aligned. */
uint8_t pci_read8(unsigned slot, unsigned off);
uint16_t pci_read16(unsigned slot, unsigned off);
uint32_t pci_read32(unsigned slot, unsigned off);
void pci_write16(unsigned slot, unsigned off, uint16_t v);
void pci_write32(unsigned slot, unsigned off, uint32_t v);

/* The first slot (from 0) holding vendor:device, or -1. */
int pci_find(uint16_t vendor, uint16_t device);

/* Calls fn(slot, offset, id, arg) for each capability in the list, at most
 * 48 (a looping list ends there); stops early when fn returns false.
 * Returns the number visited, or -1 when the status register says there is
 * no list or a pointer is out of range. */
int pci_caps(unsigned slot, bool (*fn)(unsigned slot, uint8_t off, uint8_t id, void *arg), void *arg);

/* The guest-physical address of memory BAR bar (a 64-bit BAR takes the
 * next register too); 0 for an I/O BAR, an unset one or a bad index. */
uint64_t pci_bar_addr(unsigned slot, unsigned bar);

#endif
