"""Fixed vocabularies of the demo data set: plans, names, prefectures, stores, calendars.

Everything here is computed once at import so that the per-row code only indexes lists and joins
strings: formatting a date-time per row would dominate the generator's run time at millions of rows.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum


class Billing(StrEnum):
    MONTHLY = "monthly"
    # Prepaid for twelve months at once (a "long licence": refunds prorate at the monthly list price).
    PREPAID_YEAR = "prepaid_year"
    # Renews itself every twelve months (the antivirus case of the 60-day money-back policy).
    YEARLY_AUTORENEW = "yearly_autorenew"


@dataclass(frozen=True, slots=True)
class PlanSpec:
    code: str
    name: str
    monthly_fee_jpy: int
    billing: Billing
    # Relative share of subscriptions.
    weight: int
    # Price of one twelve-month charge; 0 for monthly plans.
    yearly_price_jpy: int = 0


# The five plans of the 2024 login outage (SPEC `login-outage-2024`) come first, then a few others.
PLANS: tuple[PlanSpec, ...] = (
    PlanSpec("premium", "プレミアム会員", 990, Billing.MONTHLY, 34),
    PlanSpec("channel", "チャンネル有料会員", 550, Billing.MONTHLY, 14),
    PlanSpec("channel_plus", "チャンネルプラス有料会員", 1100, Billing.MONTHLY, 5),
    PlanSpec("creator_support", "クリエイター支援プログラム", 500, Billing.MONTHLY, 4),
    PlanSpec("zen_study", "ZEN Study 月額会員", 1490, Billing.MONTHLY, 6),
    PlanSpec("basic", "ベーシック", 550, Billing.MONTHLY, 16),
    PlanSpec("family", "ファミリープラン", 1490, Billing.MONTHLY, 6),
    PlanSpec("annual_premium", "年間プレミアム（12か月前払い）", 990, Billing.PREPAID_YEAR, 7, 9900),
    PlanSpec("antivirus", "ウイルス対策ソフト（1年自動更新）", 550, Billing.YEARLY_AUTORENEW, 8, 5280),
)
LOGIN_OUTAGE_PLAN_CODES: frozenset[str] = frozenset(
    {"premium", "channel", "channel_plus", "creator_support", "zen_study"}
)

# (kanji, romaji) pairs: romaji builds plausible e-mail local parts.
FAMILY_NAMES: tuple[tuple[str, str], ...] = (
    ("佐藤", "sato"),
    ("鈴木", "suzuki"),
    ("高橋", "takahashi"),
    ("田中", "tanaka"),
    ("伊藤", "ito"),
    ("渡辺", "watanabe"),
    ("山本", "yamamoto"),
    ("中村", "nakamura"),
    ("小林", "kobayashi"),
    ("加藤", "kato"),
    ("吉田", "yoshida"),
    ("山田", "yamada"),
    ("佐々木", "sasaki"),
    ("山口", "yamaguchi"),
    ("松本", "matsumoto"),
    ("井上", "inoue"),
    ("木村", "kimura"),
    ("林", "hayashi"),
    ("斎藤", "saito"),
    ("清水", "shimizu"),
    ("森", "mori"),
    ("池田", "ikeda"),
    ("橋本", "hashimoto"),
    ("石川", "ishikawa"),
)
GIVEN_NAMES: tuple[tuple[str, str], ...] = (
    ("太郎", "taro"),
    ("花子", "hanako"),
    ("翔太", "shota"),
    ("陽菜", "hina"),
    ("大輔", "daisuke"),
    ("美咲", "misaki"),
    ("健一", "kenichi"),
    ("由美", "yumi"),
    ("蓮", "ren"),
    ("結衣", "yui"),
    ("拓也", "takuya"),
    ("さくら", "sakura"),
    ("誠", "makoto"),
    ("愛", "ai"),
    ("悠斗", "yuto"),
    ("恵子", "keiko"),
    ("直樹", "naoki"),
    ("彩", "aya"),
    ("和也", "kazuya"),
    ("真由美", "mayumi"),
)
EMAIL_DOMAINS: tuple[str, ...] = ("example.jp", "example.com", "mail.example.ne.jp", "example.co.jp")
MOBILE_PREFIXES: tuple[str, ...] = ("090", "080", "070")
LANDLINE_AREAS: tuple[str, ...] = ("03", "06", "052", "011", "092", "075")

PREFECTURES: tuple[str, ...] = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県", "群馬県",
    "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県", "山梨県", "長野県",
    "岐阜県", "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府", "兵庫県", "奈良県", "和歌山県",
    "鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県", "香川県", "愛媛県", "高知県", "福岡県",
    "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県", "鹿児島県", "沖縄県",
)  # fmt: skip
# Coupon stores: no commas, so rows never need quoting.
STORES: tuple[str, ...] = (
    "道の駅 みなみ",
    "ホテル海風 本館",
    "温泉旅館 ゆもと",
    "土産処 かもめ",
    "レストラン 港の灯",
    "ファミリーマート 駅前店",
    "ローソン 中央通り店",
    "セブン-イレブン 空港店",
    "観光タクシー さくら",
    "酒蔵 見学売店",
    "水族館 ミュージアムショップ",
    "レンタカー 駅前営業所",
)
FACE_VALUES_JPY: tuple[int, ...] = (1000, 2000, 3000, 5000, 10000, 15000, 20000)
POINT_PAYOUTS: tuple[str, ...] = ("points:amazon", "points:ponta", "points:paypay", "points:edy", "points:nanaco")
AUTORENEW_REASONS: tuple[tuple[str, int], ...] = (
    ("no_pc", 25),
    ("duplicate_purchase", 25),
    ("competitor", 15),
    ("price", 20),
    ("other", 15),
)
PAYMENT_METHODS: tuple[tuple[str, int], ...] = (
    ("card", 62),
    ("carrier", 12),
    ("apple_iap", 8),
    ("google_play", 7),
    ("convenience", 5),
    ("bank", 3),
    ("points", 3),
)

# -- Calendar tables -------------------------------------------------------------------------------
# Day index 0 is EPOCH; month index 0 is EPOCH's month. All dates are JST calendar dates.
EPOCH = date(2018, 1, 1)
LAST_DAY = date(2026, 12, 31)
DAY_STR: tuple[str, ...] = tuple(
    (EPOCH + timedelta(days=offset)).isoformat() for offset in range((LAST_DAY - EPOCH).days + 1)
)
# "THH:MM:SS+09:00" for every second of a day: a date-time is DAY_STR[d] + TIME_STR[s].
TIME_STR: tuple[str, ...] = tuple(
    f"T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}+09:00" for second in range(86400)
)
MONTH_COUNT = (LAST_DAY.year - EPOCH.year) * 12 + 12
# Day index of the 1st of every month.
MONTH_FIRST_DAY: tuple[int, ...] = tuple(
    (date(EPOCH.year + m // 12, m % 12 + 1, 1) - EPOCH).days for m in range(MONTH_COUNT)
)


def day_index(day: date) -> int:
    return (day - EPOCH).days


def month_index(year: int, month: int) -> int:
    return (year - EPOCH.year) * 12 + month - 1


# Month index of every day index.
MONTH_OF_DAY: tuple[int, ...] = tuple(
    month
    for month in range(MONTH_COUNT)
    for _ in range((MONTH_FIRST_DAY[month + 1] if month + 1 < MONTH_COUNT else len(DAY_STR)) - MONTH_FIRST_DAY[month])
)
