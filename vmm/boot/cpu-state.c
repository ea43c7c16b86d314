/* The boot vCPU's initial state: the GDT and identity page tables the
 * loader puts in guest memory, and the registers derived from them. The
 * segment registers are decoded from the very descriptors written to the
 * GDT, so the hidden parts KVM holds always match guest memory. */
#include "config.h"

#include "boot-internal.h"

#define X86_CR0_PE   (1ULL << 0)
#define X86_CR0_ET   (1ULL << 4)
#define X86_CR0_PG   (1ULL << 31)
#define X86_CR4_PAE  (1ULL << 5)
#define X86_EFER_LME (1ULL << 8)
#define X86_EFER_LMA (1ULL << 10)

#define PTE_PRESENT  0x1ULL
#define PTE_WRITE    0x2ULL
#define PTE_HUGE     0x80ULL    /* 2 MiB page in a PD entry */

#define BOOT_IDENTITY_GIB 4     /* covers every address the loader uses */

/* Flat 4 GiB descriptors; type 0xb/0x3 have the accessed bit set so the
 * CPU never writes the GDT. The TSS is the PVH ABI's: base 0, limit 0x67,
 * busy; its upper 8 bytes (64-bit base) stay zero. */
static const uint64_t boot_gdt[BOOT_GDT_SIZE / 8] = {
    [0] = 0,
    [BOOT_SEL_CODE32 / 8] = 0x00cf9b000000ffffULL,  /* 32-bit code, D=1 G=1 */
    [BOOT_SEL_CODE64 / 8] = 0x00af9b000000ffffULL,  /* 64-bit code, L=1 G=1 */
    [BOOT_SEL_DATA / 8] = 0x00cf93000000ffffULL,    /* data, B=1 G=1 */
    [BOOT_SEL_TSS / 8] = 0x00008b0000000067ULL,     /* busy TSS */
    [BOOT_SEL_TSS / 8 + 1] = 0,
};

uint64_t boot_gdt_descriptor(unsigned index)
{
    return index < G_N_ELEMENTS(boot_gdt) ? boot_gdt[index] : 0;
}

bool boot_gdt_write(GuestMemory *mem, BootEntry *entry)
{
    uint8_t buf[BOOT_GDT_SIZE];

    for (unsigned i = 0; i < G_N_ELEMENTS(boot_gdt); i++) {
        boot_wr64(buf + 8 * i, boot_gdt[i]);
    }
    entry->gdt = BOOT_GDT_ADDR;
    entry->gdt_limit = BOOT_GDT_SIZE - 1;
    return guest_memory_write(mem, BOOT_GDT_ADDR, buf, sizeof(buf));
}

bool boot_page_tables_write(GuestMemory *mem, BootEntry *entry)
{
    uint64_t pdpt = BOOT_PML4_ADDR + GUEST_PAGE_SIZE;
    uint64_t pd = pdpt + GUEST_PAGE_SIZE;
    uint8_t page[GUEST_PAGE_SIZE];

    memset(page, 0, sizeof(page));
    boot_wr64(page, pdpt | PTE_PRESENT | PTE_WRITE);
    if (!guest_memory_write(mem, BOOT_PML4_ADDR, page, sizeof(page))) {
        return false;
    }
    for (unsigned i = 0; i < BOOT_IDENTITY_GIB; i++) {
        boot_wr64(page + 8 * i, (pd + i * GUEST_PAGE_SIZE) | PTE_PRESENT | PTE_WRITE);
    }
    if (!guest_memory_write(mem, pdpt, page, sizeof(page))) {
        return false;
    }
    for (unsigned i = 0; i < BOOT_IDENTITY_GIB; i++) {
        for (unsigned j = 0; j < 512; j++) {
            uint64_t addr = ((uint64_t)i << 30) | ((uint64_t)j << 21);
            boot_wr64(page + 8 * j, addr | PTE_PRESENT | PTE_WRITE | PTE_HUGE);
        }
        if (!guest_memory_write(mem, pd + i * GUEST_PAGE_SIZE, page, sizeof(page))) {
            return false;
        }
    }
    entry->page_tables = BOOT_PML4_ADDR;
    return true;
}

/* The hidden segment state KVM wants for selector @sel, read off its
 * descriptor the way the CPU would on a segment load. */
static struct kvm_segment boot_segment(uint16_t sel)
{
    uint64_t d = boot_gdt_descriptor(sel / 8);
    struct kvm_segment s = { 0 };

    s.selector = sel;
    s.base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24);
    s.limit = (uint32_t)((d & 0xffff) | (((d >> 48) & 0xf) << 16));
    s.type = (d >> 40) & 0xf;
    s.s = (d >> 44) & 1;
    s.dpl = (d >> 45) & 3;
    s.present = (d >> 47) & 1;
    s.avl = (d >> 52) & 1;
    s.l = (d >> 53) & 1;
    s.db = (d >> 54) & 1;
    s.g = (d >> 55) & 1;
    if (s.g) {
        s.limit = (s.limit << 12) | 0xfff;
    }
    s.unusable = !s.present;
    return s;
}

void boot_cpu_state(const BootEntry *entry, struct kvm_regs *regs, struct kvm_sregs *sregs)
{
    bool lm = entry->mode == BOOT_MODE_LINUX64;
    struct kvm_segment data = boot_segment(BOOT_SEL_DATA);

    memset(regs, 0, sizeof(*regs));
    regs->rflags = 0x2;                 /* reserved bit 1; IF clear */
    regs->rip = entry->entry;
    regs->rsp = entry->stack;
    if (lm) {
        regs->rsi = entry->params;      /* boot protocol: zero page in rsi */
    } else {
        regs->rbx = entry->params;      /* PVH: hvm_start_info in ebx */
    }

    sregs->cs = boot_segment(lm ? BOOT_SEL_CODE64 : BOOT_SEL_CODE32);
    sregs->ds = data;
    sregs->es = data;
    sregs->fs = data;
    sregs->gs = data;
    sregs->ss = data;
    sregs->tr = boot_segment(BOOT_SEL_TSS);
    memset(&sregs->ldt, 0, sizeof(sregs->ldt));
    sregs->ldt.type = 0x2;              /* LDT, marked unusable */
    sregs->ldt.unusable = 1;

    sregs->gdt.base = entry->gdt;
    sregs->gdt.limit = (uint16_t)entry->gdt_limit;
    sregs->idt.base = 0;
    sregs->idt.limit = 0;               /* interrupts stay off until the kernel loads its IDT */

    sregs->cr0 = X86_CR0_PE | X86_CR0_ET | (lm ? X86_CR0_PG : 0);
    sregs->cr2 = 0;
    sregs->cr3 = lm ? entry->page_tables : 0;
    sregs->cr4 = lm ? X86_CR4_PAE : 0;
    sregs->efer = lm ? (X86_EFER_LME | X86_EFER_LMA) : 0;
}
