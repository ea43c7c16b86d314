/*
 * colo-vmm's DSDT (vmm/boot/acpi.c copies it into guest memory at boot).
 *
 * \_S5 for power-off through vmm/devices/acpi-pm, the PCI host bridge
 * (PNP0A03) of vmm/pci, and the description of the memory hot-plug
 * controller of vmm/devices/memory-hotplug (I/O 0xa00, the register layout
 * of QEMU's docs/specs/acpi_mem_hotplug.rst): one PNP0C80 memory device per DIMM slot, whose _STA and _CRS read the
 * controller, and the GPE 3 handler that scans the slots for insert events
 * and notifies the OS. docs/memory-hotplug.md is the user's side.
 *
 * Revision 2: integers are 64 bits, so a DIMM's address and size are read
 * whole. MDNR, the number of slots in use, is patched at boot.
 */
DefinitionBlock ("", "DSDT", 2, "COLO  ", "COLO-VMM", 1)
{
    Name (_S5, Package () { Zero, Zero, Zero, Zero })

    Scope (\_SB)
    {
        /*
         * The PCI host bridge of vmm/pci (pci.h): bus 0 only, configuration
         * mechanism #1 at 0xCF8-0xCFF, the I/O ports around it and the
         * 32-bit MMIO window up to the IOAPIC, where colo-vmm places BARs.
         * Without it an ACPI OS never scans bus 0 (Linux: no virtio
         * devices unless pci=noacpi). Devices interrupt by MSI-X only
         * (interrupt pin 0), so there is no _PRT.
         */
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A03"))
            Name (_UID, Zero)
            Name (_SEG, Zero)
            Name (_BBN, Zero)
            Name (_ADR, Zero)
            Name (_CRS, ResourceTemplate ()
            {
                WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
                    0x0000, 0x0000, 0x0000, 0x0000, 0x0001)
                IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
                    0x0000, 0x0000, 0x0CF7, 0x0000, 0x0CF8)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
                    0x0000, 0x0D00, 0xFFFF, 0x0000, 0xF300)
                DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,
                    0x00000000, 0xC0000000, 0xFEBFFFFF, 0x00000000, 0x3EC00000)
            })
        }

        Device (MHPC)
        {
            Name (_HID, "PNP0A06")
            Name (_UID, "Memory hotplug resources")
            Name (_CRS, ResourceTemplate ()
            {
                IO (Decode16, 0x0A00, 0x0A00, 0x00, 0x18)
            })
            /* Slots (-m slots=N); colo-vmm replaces the placeholder. */
            Name (MDNR, 0x4D444E52)
            OperationRegion (HPMR, SystemIO, 0x0A00, 0x18)
            Field (HPMR, DWordAcc, NoLock, Preserve)
            {
                MRBL, 32,   /* base address, low and high */
                MRBH, 32,
                MRLL, 32,   /* size, low and high */
                MRLH, 32,
                MPX, 32     /* proximity domain */
            }
            Field (HPMR, ByteAcc, NoLock, WriteAsZeros)
            {
                Offset (0x14),
                MES, 1,     /* enabled */
                MINS, 1,    /* insert event; write 1 to clear */
                MRMV, 1,    /* remove event */
                MEJ, 1      /* eject request (refused by colo-vmm) */
            }
            Field (HPMR, DWordAcc, NoLock, Preserve)
            {
                MSEL, 32,   /* slot selector */
                MOEV, 32,   /* _OST event */
                MOSC, 32    /* _OST status */
            }
            Mutex (MLCK, 0)

            Method (_STA, 0, NotSerialized)
            {
                If (MDNR == Zero)
                {
                    Return (Zero)
                }
                Return (0x0B)
            }

            /* GPE 3: notify each slot with a pending insert event. */
            Method (MSCN, 0, NotSerialized)
            {
                If (MDNR == Zero)
                {
                    Return (Zero)
                }
                Local0 = Zero
                Acquire (MLCK, 0xFFFF)
                While (Local0 < MDNR)
                {
                    MSEL = Local0
                    If (MINS == One)
                    {
                        \_SB.MTFY (Local0, One)
                        MINS = One
                    }
                    Local0++
                }
                Release (MLCK)
                Return (One)
            }

            Method (MRST, 1, NotSerialized)
            {
                Local0 = Zero
                Acquire (MLCK, 0xFFFF)
                MSEL = Arg0
                If (MES == One)
                {
                    Local0 = 0x0F
                }
                Release (MLCK)
                Return (Local0)
            }

            Method (MCRS, 1, Serialized)
            {
                Name (MR64, ResourceTemplate ()
                {
                    QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite,
                        0x0000000000000000, 0x0000000000000000, 0xFFFFFFFFFFFFFFFE,
                        0x0000000000000000, 0xFFFFFFFFFFFFFFFF, , , MW64, AddressRangeMemory, TypeStatic)
                })
                CreateQWordField (MR64, \_SB.MHPC.MCRS.MW64._MIN, MINQ)
                CreateQWordField (MR64, \_SB.MHPC.MCRS.MW64._MAX, MAXQ)
                CreateQWordField (MR64, \_SB.MHPC.MCRS.MW64._LEN, LENQ)
                Acquire (MLCK, 0xFFFF)
                MSEL = Arg0
                MINQ = (MRBH << 32) | MRBL
                LENQ = (MRLH << 32) | MRLL
                Release (MLCK)
                MAXQ = MINQ + LENQ - One
                Return (MR64)
            }

            Method (MPXM, 1, NotSerialized)
            {
                Acquire (MLCK, 0xFFFF)
                MSEL = Arg0
                Local0 = MPX
                Release (MLCK)
                Return (Local0)
            }

            Method (MOST, 4, NotSerialized)
            {
                Acquire (MLCK, 0xFFFF)
                MSEL = Arg0
                MOEV = Arg1
                MOSC = Arg2
                Release (MLCK)
            }
        }

        Device (MP00)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x00)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP01)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x01)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP02)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x02)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP03)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x03)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP04)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x04)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP05)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x05)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP06)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x06)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP07)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x07)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP08)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x08)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP09)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x09)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP0A)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x0A)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP0B)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x0B)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP0C)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x0C)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP0D)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x0D)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP0E)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x0E)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP0F)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x0F)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP10)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x10)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP11)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x11)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP12)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x12)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP13)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x13)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP14)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x14)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP15)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x15)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP16)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x16)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP17)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x17)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP18)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x18)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP19)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x19)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP1A)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x1A)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP1B)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x1B)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP1C)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x1C)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP1D)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x1D)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP1E)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x1E)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Device (MP1F)
        {
            Name (_HID, EisaId ("PNP0C80"))
            Name (_UID, 0x1F)
            Method (_STA, 0, NotSerialized) { Return (\_SB.MHPC.MRST (_UID)) }
            Method (_CRS, 0, NotSerialized) { Return (\_SB.MHPC.MCRS (_UID)) }
            Method (_PXM, 0, NotSerialized) { Return (\_SB.MHPC.MPXM (_UID)) }
            Method (_OST, 3, NotSerialized) { \_SB.MHPC.MOST (_UID, Arg0, Arg1, Arg2) }
        }

        Method (MTFY, 2, NotSerialized)
        {
            If (Arg0 == 0x00) { Notify (MP00, Arg1) }
            If (Arg0 == 0x01) { Notify (MP01, Arg1) }
            If (Arg0 == 0x02) { Notify (MP02, Arg1) }
            If (Arg0 == 0x03) { Notify (MP03, Arg1) }
            If (Arg0 == 0x04) { Notify (MP04, Arg1) }
            If (Arg0 == 0x05) { Notify (MP05, Arg1) }
            If (Arg0 == 0x06) { Notify (MP06, Arg1) }
            If (Arg0 == 0x07) { Notify (MP07, Arg1) }
            If (Arg0 == 0x08) { Notify (MP08, Arg1) }
            If (Arg0 == 0x09) { Notify (MP09, Arg1) }
            If (Arg0 == 0x0A) { Notify (MP0A, Arg1) }
            If (Arg0 == 0x0B) { Notify (MP0B, Arg1) }
            If (Arg0 == 0x0C) { Notify (MP0C, Arg1) }
            If (Arg0 == 0x0D) { Notify (MP0D, Arg1) }
            If (Arg0 == 0x0E) { Notify (MP0E, Arg1) }
            If (Arg0 == 0x0F) { Notify (MP0F, Arg1) }
            If (Arg0 == 0x10) { Notify (MP10, Arg1) }
            If (Arg0 == 0x11) { Notify (MP11, Arg1) }
            If (Arg0 == 0x12) { Notify (MP12, Arg1) }
            If (Arg0 == 0x13) { Notify (MP13, Arg1) }
            If (Arg0 == 0x14) { Notify (MP14, Arg1) }
            If (Arg0 == 0x15) { Notify (MP15, Arg1) }
            If (Arg0 == 0x16) { Notify (MP16, Arg1) }
            If (Arg0 == 0x17) { Notify (MP17, Arg1) }
            If (Arg0 == 0x18) { Notify (MP18, Arg1) }
            If (Arg0 == 0x19) { Notify (MP19, Arg1) }
            If (Arg0 == 0x1A) { Notify (MP1A, Arg1) }
            If (Arg0 == 0x1B) { Notify (MP1B, Arg1) }
            If (Arg0 == 0x1C) { Notify (MP1C, Arg1) }
            If (Arg0 == 0x1D) { Notify (MP1D, Arg1) }
            If (Arg0 == 0x1E) { Notify (MP1E, Arg1) }
            If (Arg0 == 0x1F) { Notify (MP1F, Arg1) }
        }
    }

    Scope (\_GPE)
    {
        Name (_HID, "ACPI0006")

        /* Memory hot-add (vmm/devices/memory-hotplug raises GPE 3). */
        Method (_E03, 0, NotSerialized)
        {
            \_SB.MHPC.MSCN ()
        }
    }
}
