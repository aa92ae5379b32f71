"""The 31 provinces of Iran, by their ISO 3166-2:IR codes.

Source: ISO 3166-2:IR (codes IR-00 to IR-30, as revised in 2019). Persian names as the
provinces name themselves; English names as ISO gives them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator


@dataclass(frozen=True)
class Province:
    code: str
    name_fa: str
    name_en: str


PROVINCES: tuple[Province, ...] = (
    Province("IR-00", "مرکزی", "Markazi"),
    Province("IR-01", "گیلان", "Gilan"),
    Province("IR-02", "مازندران", "Mazandaran"),
    Province("IR-03", "آذربایجان شرقی", "East Azerbaijan"),
    Province("IR-04", "آذربایجان غربی", "West Azerbaijan"),
    Province("IR-05", "کرمانشاه", "Kermanshah"),
    Province("IR-06", "خوزستان", "Khuzestan"),
    Province("IR-07", "فارس", "Fars"),
    Province("IR-08", "کرمان", "Kerman"),
    Province("IR-09", "خراسان رضوی", "Razavi Khorasan"),
    Province("IR-10", "اصفهان", "Isfahan"),
    Province("IR-11", "سیستان و بلوچستان", "Sistan and Baluchestan"),
    Province("IR-12", "کردستان", "Kurdistan"),
    Province("IR-13", "همدان", "Hamadan"),
    Province("IR-14", "چهارمحال و بختیاری", "Chaharmahal and Bakhtiari"),
    Province("IR-15", "لرستان", "Lorestan"),
    Province("IR-16", "ایلام", "Ilam"),
    Province("IR-17", "کهگیلویه و بویراحمد", "Kohgiluyeh and Boyer-Ahmad"),
    Province("IR-18", "بوشهر", "Bushehr"),
    Province("IR-19", "زنجان", "Zanjan"),
    Province("IR-20", "سمنان", "Semnan"),
    Province("IR-21", "یزد", "Yazd"),
    Province("IR-22", "هرمزگان", "Hormozgan"),
    Province("IR-23", "تهران", "Tehran"),
    Province("IR-24", "اردبیل", "Ardabil"),
    Province("IR-25", "قم", "Qom"),
    Province("IR-26", "قزوین", "Qazvin"),
    Province("IR-27", "گلستان", "Golestan"),
    Province("IR-28", "خراسان شمالی", "North Khorasan"),
    Province("IR-29", "خراسان جنوبی", "South Khorasan"),
    Province("IR-30", "البرز", "Alborz"),
)

BY_CODE: dict[str, Province] = {province.code: province for province in PROVINCES}


def directorate_code(province: str) -> str:
    """The agency code of a province's ICT directorate general (`IR-15` → `ict-ir-15`)."""
    return f"ict-{province.lower()}"


#: The agency codes of the 31 provincial ICT directorates general, by province.
DIRECTORATES: dict[str, str] = {directorate_code(code): code for code in BY_CODE}


def _known_province(code: str) -> str:
    if code not in BY_CODE:
        raise ValueError(f"{code!r} is not one of the 31 province codes (IR-00 to IR-30)")
    return code


ProvinceCode = Annotated[str, AfterValidator(_known_province)]
"""An ISO 3166-2:IR province code, validated against the 31 provinces."""
