/* PCI configuration mechanism #1, BAR set-up and MSI-X. */
#include "io.h"
#include "pci.h"

#define PCI_CONFIG_ADDR 0xcf8
#define PCI_CONFIG_DATA 0xcfc

#define PCI_COMMAND     0x04
#define PCI_CMD_MEMORY  0x0002
#define PCI_CMD_MASTER  0x0004
#define PCI_CMD_INTX_OFF 0x0400
#define PCI_STATUS      0x06
#define PCI_STATUS_CAPS 0x0010
#define PCI_BAR0        0x10
#define PCI_CAP_PTR     0x34

/* Where BARs nobody assigned go: the PCI hole above what firmware or the
 * VMM used, below the IOAPIC. */
#define PCI_WINDOW_BASE 0xe0000000ULL
#define PCI_WINDOW_END  0xfec00000ULL

static uint64_t window_next;

static void pci_select(uint8_t slot, uint8_t off)
{
    outl(PCI_CONFIG_ADDR, 0x80000000u | (uint32_t)slot << 11 | (off & 0xfcu));
}

static uint32_t pci_slot_read32(uint8_t slot, uint8_t off)
{
    pci_select(slot, off);
    return inl(PCI_CONFIG_DATA);
}

uint32_t pci_read32(const struct pci_dev *d, uint8_t off)
{
    return pci_slot_read32(d->slot, off);
}

uint16_t pci_read16(const struct pci_dev *d, uint8_t off)
{
    return (uint16_t)(pci_read32(d, off) >> ((off & 2) * 8));
}

uint8_t pci_read8(const struct pci_dev *d, uint8_t off)
{
    return (uint8_t)(pci_read32(d, off) >> ((off & 3) * 8));
}

void pci_write32(const struct pci_dev *d, uint8_t off, uint32_t v)
{
    pci_select(d->slot, off);
    outl(PCI_CONFIG_DATA, v);
}

void pci_write16(const struct pci_dev *d, uint8_t off, uint16_t v)
{
    pci_select(d->slot, off);
    outw((uint16_t)(PCI_CONFIG_DATA + (off & 2)), v);
}

/* Size of the memory BAR at @off (and its upper half if 64-bit), with
 * decoding off so the all-ones probe never decodes anywhere. */
static uint64_t pci_bar_size(const struct pci_dev *d, uint8_t off, bool is64)
{
    uint32_t lo = pci_read32(d, off), hi = is64 ? pci_read32(d, (uint8_t)(off + 4)) : 0;
    uint64_t mask;

    pci_write32(d, off, 0xffffffffu);
    mask = pci_read32(d, off) & ~0xfULL;
    pci_write32(d, off, lo);
    if (is64) {
        pci_write32(d, (uint8_t)(off + 4), 0xffffffffu);
        mask |= (uint64_t)pci_read32(d, (uint8_t)(off + 4)) << 32;
        pci_write32(d, (uint8_t)(off + 4), hi);
    } else {
        mask |= 0xffffffff00000000ULL;
    }
    return mask ? ~mask + 1 : 0;
}

/* Highest end of the memory BARs already placed in the 32-bit hole, so
 * our own assignments never overlap firmware's. */
static void pci_window_init(void)
{
    window_next = PCI_WINDOW_BASE;
    for (uint8_t slot = 0; slot < 32; slot++) {
        if ((pci_slot_read32(slot, 0) & 0xffff) == 0xffff) {
            continue;
        }
        for (uint8_t i = 0; i < 6; i++) {
            uint32_t v = pci_slot_read32(slot, (uint8_t)(PCI_BAR0 + 4 * i));
            uint64_t addr = v & ~0xfULL;
            if (!(v & 1) && addr >= PCI_WINDOW_BASE && addr < PCI_WINDOW_END && addr + 0x100000 > window_next) {
                window_next = addr + 0x100000;  /* generous: the BAR's size is not probed here */
            }
        }
    }
}

static uint64_t pci_window_alloc(uint64_t size)
{
    uint64_t addr = (window_next + size - 1) & ~(size - 1);

    if (addr + size > PCI_WINDOW_END) {
        return 0;
    }
    window_next = addr + size;
    return addr;
}

static void pci_bars_setup(struct pci_dev *d)
{
    for (uint8_t i = 0; i < 6; i++) {
        uint8_t off = (uint8_t)(PCI_BAR0 + 4 * i);
        uint32_t lo = pci_read32(d, off);
        bool is64 = (lo & 0x7) == 0x4;
        uint64_t addr = lo & ~0xfULL;

        if (lo & 1) {
            continue;           /* I/O BAR: unused */
        }
        if (is64 && i < 5) {
            addr |= (uint64_t)pci_read32(d, (uint8_t)(off + 4)) << 32;
        }
        d->bar_size[i] = pci_bar_size(d, off, is64);
        if (d->bar_size[i] && (addr == 0 || addr >= 0x100000000ULL)) {
            addr = pci_window_alloc(d->bar_size[i] < 4096 ? 4096 : d->bar_size[i]);
            pci_write32(d, off, (uint32_t)addr);
            if (is64) {
                pci_write32(d, (uint8_t)(off + 4), 0);
            }
        }
        d->bar[i] = d->bar_size[i] ? addr : 0;
        if (is64) {
            i++;
        }
    }
}

bool pci_find(uint16_t vendor, uint16_t device, struct pci_dev *out)
{
    if (!window_next) {
        pci_window_init();
    }
    for (uint8_t slot = 0; slot < 32; slot++) {
        uint32_t id = pci_slot_read32(slot, 0);
        if ((id & 0xffff) != vendor || id >> 16 != device) {
            continue;
        }
        *out = (struct pci_dev){ .slot = slot, .vendor = vendor, .device = device };
        uint16_t cmd = pci_read16(out, PCI_COMMAND);
        pci_write16(out, PCI_COMMAND, (uint16_t)(cmd & ~PCI_CMD_MEMORY));
        pci_bars_setup(out);
        pci_write16(out, PCI_COMMAND, (uint16_t)(cmd | PCI_CMD_MEMORY | PCI_CMD_MASTER | PCI_CMD_INTX_OFF));
        return true;
    }
    return false;
}

uint8_t pci_cap_next(const struct pci_dev *d, uint8_t id, uint8_t after)
{
    uint8_t off;

    if (!(pci_read16(d, PCI_STATUS) & PCI_STATUS_CAPS)) {
        return 0;
    }
    off = after ? pci_read8(d, (uint8_t)(after + 1)) : pci_read8(d, PCI_CAP_PTR);
    /* Bounded walk: a looping list must not hang the boot. */
    for (int n = 0; n < 48 && off >= 0x40; n++) {
        off &= 0xfc;
        if (pci_read8(d, off) == id) {
            return off;
        }
        off = pci_read8(d, (uint8_t)(off + 1));
    }
    return 0;
}

bool pci_msix_set(const struct pci_dev *d, unsigned entry, uint8_t vector, uint32_t apic_id)
{
    uint8_t cap = pci_cap_next(d, PCI_CAP_MSIX, 0);
    uint16_t ctrl;
    uint32_t table;
    uint64_t base;

    if (!cap) {
        return false;
    }
    ctrl = pci_read16(d, (uint8_t)(cap + 2));
    table = pci_read32(d, (uint8_t)(cap + 4));
    if (entry > (ctrl & 0x7ffu) || !d->bar[table & 7]) {
        return false;
    }
    base = d->bar[table & 7] + (table & ~7u) + 16 * entry;
    mmio_write32(base, 0xfee00000u | apic_id << 12);    /* message address: LAPIC, physical */
    mmio_write32(base + 4, 0);
    mmio_write32(base + 8, vector);                     /* fixed, edge */
    mmio_write32(base + 12, 0);                         /* unmasked */
    /* Enable, function mask off. */
    pci_write16(d, (uint8_t)(cap + 2), (uint16_t)((ctrl | 0x8000u) & ~0x4000u));
    return true;
}
