"""Small families for oracle tests: few enough designs to enumerate, every block type covered."""
from deepmad_nni.core.family import Family, Op, Slot

TINY_RESNET = Family("tiny-resnet", (
    Slot(2, (8, 16), (Op("conv", 3),)),
    Slot(2, (16, 32), tuple(Op("bottleneck", k, mid_from_grid=True) for k in (3, 5)), (1, 2, 3), (8, 16, 24)),
    Slot(1, (32, 48), tuple(Op("bottleneck", k, mid_from_grid=True) for k in (3, 5)), (1, 3), (8, 32)),
    Slot(2, (48, 64), (Op("bottleneck", 3, mid_from_grid=True),), (1, 3), (16, 32)),
), resolution=32, num_classes=10, default_rho=0.5)

TINY_MBSE = Family("tiny-mbse", (
    Slot(2, (8, 16), (Op("conv", 3),)),
    Slot(1, (16, 24), tuple(Op("mbconv_se", k, e) for k in (3, 5) for e in (1.0, 4.0)), (1, 2)),
    Slot(2, (24, 40), tuple(Op("mbconv_se", k, e) for k in (3, 7) for e in (2.0, 6.0)), (1, 2, 3)),
    Slot(2, (40, 64), (Op("mbconv_se", 5, 3.0),), (1, 2)),
    Slot(1, (128, 256), (Op("conv", 1),)),
), resolution=64, num_classes=100, default_rho=0.5)

TINY_BASIC = Family("tiny-basic", (
    Slot(1, (16, 32), (Op("conv", 3),)),
    Slot(1, (16, 32), (Op("basic", 3),), (1, 2, 3)),
    Slot(2, (32, 64), (Op("basic", 3), Op("mbconv", 3, 2.0, "in"), Op("skip", 1)), (1, 2)),
    Slot(2, (64, 128), (Op("basic", 3), Op("basic", 5)), (1, 2)),
), resolution=32, num_classes=10, max_width_ratio=None, default_rho=0.5)

SMALL_FAMILIES = (TINY_RESNET, TINY_MBSE, TINY_BASIC)
