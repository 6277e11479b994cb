"""Benchmark of complaint-api: complaint intake at a fixed rate, and knowledge-base search.

Run from the repository root (2.5 minutes with the defaults when both targets are met, about 4 when one is
missed and the diagnostics run):

    .venv/bin/python bench/complaint_api_bench.py

What it does, in one run:

1. Creates two throw-away PostgreSQL databases (one per service) on `--pg`, starts `customer-api serve`
   and `complaint-api serve` (uvicorn, one worker each, migrations applied by `serve`) on free
   127.0.0.1 ports with `CRM_ENV=development`, the dev API key and `CRM_ACCESS_LOG=false`.
2. Intake: seeds customers through `POST /v1/customers` and the starter KB with `complaint-api seed-kb`,
   then drives `POST /v1/complaints` (varied Chinese complaints, random seeded customers) OPEN LOOP at a
   fixed rate (100 req/s: a send every 10 ms whatever the responses) for a warm-up and a measured
   window. Every request's latency is taken from its *scheduled* send time, so queueing in the server
   (or in the client) shows up instead of being hidden (no coordinated omission). Then, for
   information: the same request one at a time (service time with no load) and a closed loop of 16
   concurrent clients (the most the service sustains).
3. KB search: loads generated articles through `POST /v1/kb/articles` up to 1,000 published articles,
   times the first search (it rebuilds the in-memory index: the cold time), then drives
   `GET /v1/kb/search` open loop at 50 req/s from a list of simplified, traditional and English queries.
4. Samples the CPU time of both services, of the PostgreSQL backends serving the two databases and of
   the load generator during each measured window. When a target is missed (or with
   `--profile-always`) the phase is repeated briefly under `py-spy record` and the samples are sorted
   into cost buckets.
5. Prints markdown tables and writes the raw figures to `bench/results/complaint-api-<stamp>.json`
   (git-ignored). The databases are dropped at the end, also on failure or Ctrl-C.

The load generator runs in its own process (asyncio + uvloop + httpx with a keep-alive pool), so it
never shares an event loop with a server; on a 2-core machine it still shares the CPUs with the two
services and PostgreSQL, which is why its CPU is reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import itertools
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import httpx
import numpy as np
from benchkit import command_line, free_port, git_revision, machine_facts, stop

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
API_KEY = "dev-admin-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
JSON_HEADERS = {**AUTH, "Content-Type": "application/json"}
INTAKE_P99_TARGET_MS = 50.0
SEARCH_P99_TARGET_MS = 20.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ================================================================================================ test data

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈"
GIVEN = "芳伟娜敏静丽强磊洋艳勇军杰娟涛明超秀霞平刚桂英华玉萍红兰建国志文辉鹏飞雪梅琳晨宇浩然欣怡子涵思远"
# Mainland mobile prefixes (号段) that `phonenumbers` accepts as valid.
MOBILE_PREFIXES = tuple(
    str(p) for p in (*range(130, 140), *range(150, 154), *range(155, 160), 166, 173, 175, 176, 177, 178,
                     *range(180, 190), 191, 198, 199)
)  # fmt: skip

STORES = [
    "静安寺店",
    "徐家汇店",
    "浦东世纪大道店",
    "五角场店",
    "朝阳大悦城店",
    "中关村店",
    "望京店",
    "南山海岸城店",
    "福田中心店",
    "天河城店",
    "杭州西湖店",
    "成都春熙路店",
    "南京新街口店",
    "武汉光谷店",
]
APPLIANCES = ["冰箱", "洗衣机", "空调", "电视机", "热水器", "油烟机", "洗碗机", "烘干机"]
SMALL_APPLIANCES = ["电饭煲", "空气炸锅", "电水壶", "吸尘器", "扫地机器人", "破壁机", "电吹风", "微波炉"]
APPAREL = ["羽绒服", "运动鞋", "羊毛衫", "牛仔裤", "儿童外套", "真丝衬衫", "皮鞋", "冲锋衣"]
FOODS = ["纯牛奶", "酸奶", "婴儿奶粉", "大米", "花生油", "月饼", "三文鱼", "草莓", "全麦面包", "速冻水饺", "鸡蛋"]
DIGITAL = ["手机", "平板电脑", "蓝牙耳机", "智能手表", "笔记本电脑", "电动牙刷"]
PRODUCTS = APPLIANCES + SMALL_APPLIANCES + APPAREL + DIGITAL
DEFECTS = ["无法开机", "有异响", "漏水", "外壳有裂纹", "屏幕有坏点", "开线脱胶", "掉色严重", "充不进电", "温度不稳定"]
FOOD_PROBLEMS = ["已经过期两天", "包装胀袋", "有异味发酸", "里面有一根头发", "吃出了塑料片", "生产日期被涂改"]
PAYMENTS = ["信用卡", "微信支付", "支付宝", "储值卡", "银联借记卡"]
STAFF = ["收银员", "服务台工作人员", "导购", "保安", "送货师傅", "客服电话的坐席", "生鲜柜台员工"]


@dataclass(frozen=True)
class ComplaintKind:
    category: str  # complaint-api's category code
    label: str
    subjects: tuple[str, ...]
    facts: tuple[str, ...]
    asks: tuple[str, ...]


COMPLAINT_KINDS: tuple[ComplaintKind, ...] = (
    ComplaintKind(
        "returns_refunds",
        "退货",
        (
            "{product}想退货，门店不给办理",
            "七天无理由退货被拒绝",
            "申请退货{days}天了退款还没到账",
            "{product}退货被拒，说影响二次销售",
            "退款金额不对，少退了{amount}元",
            "网购的{product}退货一直没人上门取件",
        ),
        (
            "{date}在{store}买的{product}，回家发现{defect}，第二天拿着小票去服务台要求退货，店员说包装拆了不能退。",
            "App订单{order}申请退货后快递已经取件{days}天了，退款一直显示处理中，付款用的是{payment}。",
            "买了{product}，参加了满{big}减{amount}的活动，退货的时候只退给我一部分钱，没有人解释怎么算的。",
            "{product}没拆封，还在七天之内，服务台说没有发票不能退，可是我有电子订单和会员消费记录。",
        ),
        ("请尽快给我办理退货退款。", "希望给个明确的退款时间。", "要求按原价全额退款。", "请店长给个说法。"),
    ),
    ComplaintKind(
        "delivery",
        "配送",
        (
            "{product}送货延误{days}天",
            "送货师傅没打电话就走了",
            "预约的{product}安装一直没人上门",
            "配送的{product}外箱破损",
            "送货上门要加收上楼费",
        ),
        (
            "{date}在{store}买的{product}，预约周六送货安装，到现在{days}天了还没送到，打电话也没人接。",
            "订单{order}显示已签收，可是我一直在家，根本没有收到{product}，物流也查不到。",
            "送来的{product}外包装压坏了，师傅让我先签收，说有问题再找门店，现在门店推给物流。",
            "送货师傅说住{floor}楼没电梯要另收{amount}元搬运费，下单时页面上写的是免费送货上门。",
        ),
        ("请尽快安排送货。", "要求赔偿延误造成的损失。", "希望给我换一台新的。", "请核实后给我回电话。"),
    ),
    ComplaintKind(
        "product_quality",
        "质量",
        (
            "{product}用了{days}天就坏了",
            "新买的{product}{defect}",
            "{product}质量太差要求换货",
            "维修了两次{product}还是{defect}",
        ),
        (
            "{date}在{store}买的{product}，用了不到{days}天就{defect}，售后检测说要等厂家确认。",
            "这台{product}已经修过两次，现在又{defect}，按三包规定应该可以换新的。",
            "给孩子买的{product}第一次穿就{defect}，价格{amount}元，这个质量说不过去。",
        ),
        ("请按三包规定给我换新。", "要求退货并赔偿。", "请安排上门检测。", "希望加快处理。"),
    ),
    ComplaintKind(
        "food_safety",
        "食品",
        ("买的{food}{food_problem}", "{food}里吃出异物", "临期{food}没有打折还在正常卖", "{store}熟食区卫生差"),
        (
            "{date}在{store}买的{food}，回家打开发现{food_problem}，小票还在，孩子已经吃了一点。",
            "货架上的{food}{food_problem}，我拍了照片，生鲜柜台的员工说不归他管。",
        ),
        ("要求退一赔十。", "请给个处理结果。", "希望门店加强检查。", "孩子吃了有点不舒服，要求赔偿检查费用。"),
    ),
    ComplaintKind(
        "service_attitude",
        "态度",
        ("{store}{staff}态度恶劣", "{staff}不耐烦还骂人", "导购强行推销", "排队结账半小时只开了两个收银台"),
        (
            "{date}下午在{store}，{staff}对我很不耐烦，问了两遍就开始大声说话，周围很多人都看着。",
            "我在{store}问{product}的保修，{staff}一直玩手机，最后说自己不知道让我去问别人。",
            "周末在{store}结账排了{minutes}分钟，只开了两个收银台，自助收银机也坏了一台没人管。",
        ),
        ("请对这名员工严肃处理。", "希望店长给我道歉。", "请改进服务。", "要求给个书面答复。"),
    ),
    ComplaintKind(
        "membership",
        "积分",
        ("积分没有到账", "会员积分被莫名清零", "积分兑换的礼品迟迟不发", "会员等级降级没通知", "生日礼券没收到"),
        (
            "{date}在{store}消费了{big}元，结账时出示了会员码，到现在{days}天了积分还没有到账。",
            "我的会员账户里原来有{points}积分，今天查看突然变成0了，也没有收到任何过期提醒。",
            "上个月用{points}积分兑换了{product}，一直显示待发货，客服说在调货。",
            "我是金卡会员，今年消费也不少，这个月突然降成银卡，没有任何通知。",
        ),
        ("请帮我把积分补上。", "请说明积分清零的原因。", "要求尽快发货。", "请恢复我的会员等级。"),
    ),
    ComplaintKind(
        "store_environment",
        "停车",
        ("停车场收费不合理", "会员免费停车时长没抵扣", "停车场出口排队太久", "{store}卫生间很脏", "停车券用不了"),
        (
            "在{store}购物满{big}元，按规定可以免费停车{hours}小时，出口收费的时候没有给我抵扣，多收了{amount}元。",
            "周六晚上从{store}地下停车场出来排了{minutes}分钟，只有一个出口在收费，扫码也很慢。",
            "{store}二楼卫生间没有纸，地面很湿，洗手池堵了，也没有保洁人员。",
            "App上领的停车券在出口用不了，收费员说系统不认，只能付现金。",
        ),
        ("请退还多收的停车费。", "希望改进出场收费。", "请尽快整改。", "请给个解释。"),
    ),
    ComplaintKind(
        "billing",
        "发票",
        ("发票抬头开错了要重开", "电子发票一直没收到", "专票税号有误", "结账多收了{amount}元", "小票金额和价签不一致"),
        (
            "{date}在{store}买的{product}，开的电子发票抬头写错了公司名，要求换开，服务台说要等{days}个工作日。",
            "线上订单{order}付款{big}元，申请了电子发票，{days}天了邮箱里还没收到。",
            "公司需要增值税专用发票，开出来的税号少了一位，财务不能报销，要求重开。",
            "回家对小票发现{product}被扫了两次，多收了{amount}元。",
        ),
        ("请尽快重开发票。", "请退还多收的钱。", "请把发票发到我的邮箱。", "请核实后联系我。"),
    ),
    ComplaintKind(
        "price",
        "价格",
        ("价签和结账价格不一致", "买完就降价要求价保", "满减活动没有生效", "优惠券不能叠加使用"),
        (
            "货架上{product}标价{amount}元，结账的时候收了{big}元，收银员说价签没换。",
            "{date}买的{product}，{days}天后同款就降价了{amount}元，要求价保，客服说活动商品不参加。",
            "参加满{big}减{amount}的活动，结账时系统没有减，收银员说要去服务台处理。",
        ),
        ("请退还差价。", "请按页面承诺处理。", "希望给个合理解释。"),
    ),
    ComplaintKind(
        "other",
        "其他",
        ("接到骚扰电话怀疑会员信息泄露", "在{store}丢了东西找不到", "储值卡丢了要挂失", "预售定金不给退"),
        (
            "注册会员以后经常接到推销电话，对方能说出我在{store}买过{product}，怀疑个人信息被泄露。",
            "{date}在{store}三楼丢了一个钱包，服务台登记了，到现在没有消息。",
            "我的不记名储值卡丢了，里面还有{amount}元，服务台说不能挂失。",
            "预售的{product}付了{amount}元定金，现在不想要了，客服说定金不退。",
        ),
        ("请给我一个答复。", "要求删除我的个人信息。", "请帮忙查一下监控。", "请按规定处理。"),
    ),
)
KIND_WEIGHTS = (18, 16, 14, 6, 10, 10, 8, 8, 6, 4)
CHANNELS = ("phone", "web", "app", "store", "wechat")
CHANNEL_WEIGHTS = (30, 15, 30, 15, 10)
SEVERITIES = ("low", "medium", "high", "critical")
SEVERITY_WEIGHTS = (20, 55, 20, 5)


def fill(template: str, rng: random.Random) -> str:
    values = {
        "product": rng.choice(PRODUCTS),
        "food": rng.choice(FOODS),
        "food_problem": rng.choice(FOOD_PROBLEMS),
        "store": rng.choice(STORES),
        "defect": rng.choice(DEFECTS),
        "payment": rng.choice(PAYMENTS),
        "staff": rng.choice(STAFF),
        "days": rng.randint(2, 15),
        "hours": rng.choice([2, 3, 4]),
        "minutes": rng.choice([20, 30, 40, 45]),
        "floor": rng.randint(3, 9),
        "amount": rng.choice([15, 30, 50, 68, 99, 120, 200, 300]),
        "big": rng.choice([199, 299, 500, 888, 1299, 2999, 4599]),
        "points": rng.choice([1200, 3500, 8000, 12600, 20000]),
        "date": f"{rng.randint(9, 11)}月{rng.randint(1, 28)}日",
        "order": f"APP-2026{rng.randint(9, 11):02d}{rng.randint(1, 28):02d}-{rng.randint(1000, 9999)}",
    }
    return template.format(**values)


def customer_body(i: int, rng: random.Random, phones: set[str]) -> dict[str, Any]:
    while True:
        phone = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        if phone not in phones:
            phones.add(phone)
            break
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice([1, 2])))
    return {"name": name, "phone": phone, "tags": ["bench"], "owner_id": f"staff-{i % 20:03d}"}


def complaint_body(customer_ids: Sequence[str], rng: random.Random) -> dict[str, Any]:
    kind = rng.choices(COMPLAINT_KINDS, weights=KIND_WEIGHTS)[0]
    parts = [fill(rng.choice(kind.facts), rng)]
    if rng.random() < 0.4:  # some customers write more
        parts.append(fill(rng.choice(rng.choice(COMPLAINT_KINDS).facts), rng))
    parts.append(rng.choice(kind.asks))
    body: dict[str, Any] = {
        "customer_id": rng.choice(customer_ids),
        "channel": rng.choices(CHANNELS, weights=CHANNEL_WEIGHTS)[0],
        "category": kind.category,
        "subject": fill(rng.choice(kind.subjects), rng),
        "description": "".join(parts),
        "severity": rng.choices(SEVERITIES, weights=SEVERITY_WEIGHTS)[0],
    }
    if rng.random() < 0.3:
        body["order_id"] = f"APP-2026{rng.randint(9, 11):02d}{rng.randint(1, 28):02d}-{rng.randint(1000, 9999)}"
    return body


# Knowledge-base variants: (category, slug stem, title template, sentence templates, tags). Sentences are
# taken in order, some dropped at random, so variants of one topic differ in content and length.
KB_TOPICS: tuple[tuple[str, str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "parking",
        "parking-store",
        "{store}停车收费与会员免费时长",
        (
            "{store}地下停车场共有{spaces}个车位，营业时间内开放，{open}点至次日凌晨1点可出场。",
            "临时停车首{free}小时免费，之后每小时{fee}元，单日封顶{cap}元。",
            "当日购物满{big}元可凭小票或电子订单在服务台或自助机减免{hours}小时停车费。",
            "银卡会员每次额外免费1小时，金卡会员额外免费2小时，钻石会员当日全天免费。",
            "停车券在App“我的-卡券”中领取，出场时扫码抵扣，每车每天限用一张，不找零不折现。",
            "出口缴费支持微信、支付宝和银联闪付，高峰时段建议提前在App内缴费后15分钟内出场。",
            "如出场时未抵扣，请保留缴费凭证，7天内到服务台申请退还多收的停车费。",
        ),
        ("停车", "免费停车", "停车券", "会员"),
    ),
    (
        "store-services",
        "store-hours",
        "{store}营业时间与服务台",
        (
            "{store}营业时间为每天{open}:00至22:00，节假日延长至22:30。",
            "一楼服务台提供退换货、发票开具、会员办理、失物招领、寄存和轮椅借用服务。",
            "超市区位于负一层，生鲜柜台每天{close}点后部分商品打折出售。",
            "母婴室在三楼东侧，提供温水、尿布台和哺乳座椅；无障碍卫生间每层都有。",
            "服务台电话为400-820-{ext}，营业时间内有人接听，其他时间可在App留言。",
            "遗失物品请到服务台登记，贵重物品保管30天，普通物品保管7天。",
        ),
        ("营业时间", "服务台", "门店服务"),
    ),
    (
        "returns",
        "returns-product",
        "{product}退换货说明",
        (
            "{product}自签收或购买之日起7天内，包装、配件和赠品齐全且不影响二次销售的，可以无理由退货。",
            "15天内出现性能故障的，可以选择换货或退货；退货按实付金额退款，赠品需一并退回。",
            "已激活、已安装或有明显使用痕迹的{product}不适用无理由退货，如有质量问题按三包规定办理。",
            "门店购买的可到任一门店一楼服务台办理；线上订单在App“我的订单”中申请，可预约上门取件。",
            "办理退货需提供购物小票、电子订单或会员消费记录之一，不要求必须提供发票。",
            "单笔退货金额超过{amount}元的，由值班经理审核，一般30分钟内完成。",
            "参加满减活动的商品，按分摊后的实付金额退款，未退回赠品的按标价扣款。",
        ),
        ("退货", "换货", "7天无理由", "退换货"),
    ),
    (
        "product-quality",
        "warranty",
        "{product}三包与保修期限",
        (
            "{product}整机保修{years}年，主要部件保修{parts}年，以购买发票或电子订单日期为准。",
            "购买后7天内出现性能故障的，可选择退货、换货或修理；15天内可选择换货或修理。",
            "保修期内修理两次后仍不能正常使用的，凭维修记录可以换货或退货。",
            "人为损坏、私自拆机和不可抗力造成的故障不在保修范围内，可按收费标准维修。",
            "报修可拨打400-820-{ext}或在App提交，工程师一般在{days}个工作日内上门检测。",
            "检测期间需要备用机的，可到服务台登记，视库存提供。",
        ),
        ("三包", "保修", "质量问题", "维修"),
    ),
    (
        "delivery",
        "delivery-install",
        "{product}送货与安装时效",
        (
            "{product}下单后{days}天内送达，大件商品送货上门并免费安装，偏远地区另行约定。",
            "送货前一天会有短信和电话确认时间，请保持电话畅通；错过预约可在App改约一次。",
            "无电梯住户{floor}楼以上需收取搬运费，每层{fee}元，下单页面会提示费用。",
            "签收时请当面检查外包装和商品外观，破损可以拒收，由我们重新安排配送。",
            "配送延误超过{days}天的，可申请{amount}元延误补偿券，或无理由取消订单。",
            "安装需要的辅材按标准收费，收费前安装师傅会出示价目表。",
        ),
        ("配送", "送货", "安装", "延误"),
    ),
    (
        "refunds",
        "refund-payment",
        "{payment}退款到账时间",
        (
            "退款一律原路退回，使用{payment}支付的，退款发起后{refund_days}个工作日内到账。",
            "组合支付的订单按各支付方式的实付金额分别退回，积分和优惠券按规则返还。",
            "信用卡退款以发卡行入账为准，可能在下一期账单中体现，请留意账单上的退款记录。",
            "储值卡支付的部分退回原卡，原卡已注销的退到新卡或按规定处理。",
            "超过到账时间仍未收到的，请携带退款凭证到服务台或拨打400-820-{ext}查询。",
        ),
        ("退款", "到账", "原路退回"),
    ),
    (
        "promotions",
        "promo-full-reduction",
        "{festival}满{big}减{amount}活动规则",
        (
            "活动期间在{store}及App购买参与活动的商品，每满{big}元立减{amount}元，上不封顶。",
            "满减按订单中参与活动商品的实付金额计算，生鲜、烟酒、购物卡和黄金饰品不参加。",
            "满减可以与会员折扣同时使用，不能与店铺优惠券叠加，每单限用一张平台券。",
            "部分退货后订单不再满足满减条件的，按分摊规则扣回已优惠的金额。",
            "活动商品以价签上的活动标识为准，如有疑问请咨询导购或服务台。",
        ),
        ("满减", "促销", "优惠券", "活动规则"),
    ),
    (
        "membership",
        "membership-points",
        "{tier}会员积分与权益",
        (
            "{tier}会员每消费1元累积{rate}积分，生日当月双倍积分，会员日{weekday}额外95折。",
            "积分有效期为获得之日起{expire}个月，到期前30天短信提醒，过期积分自动清零。",
            "积分可在App或服务台兑换商品、停车券和购物抵用券，100积分抵1元。",
            "上一年度消费满{big}元可保级，未满则在次年1月调整为下一等级。",
            "积分消费后{days}天内到账，结账时未出示会员码的，30天内凭小票到服务台补录。",
            "退货时对应积分会被扣回，积分不足的从退款中按100积分1元扣除。",
        ),
        ("积分", "会员", "会员等级", "积分过期"),
    ),
    (
        "invoices",
        "invoice-store",
        "{store}发票开具与换开",
        (
            "在{store}购物可开具电子普通发票，结账后扫描小票上的二维码填写抬头，发票发送到邮箱。",
            "企业需要增值税专用发票的，请提供名称、税号、地址电话和开户行账号，{days}个工作日内开出。",
            "发票抬头或税号写错的，可在开票后{expire}天内申请红冲并重新开具，需提供原发票信息。",
            "专票换开需企业先在电子税务局提交红字发票信息确认单，由服务台协助办理。",
            "购物卡、储值卡充值只开具不征税发票，使用卡消费时不再重复开票。",
            "线上订单在App“我的订单-发票”中申请，签收后可开具，最晚不超过订单完成后180天。",
        ),
        ("发票", "电子发票", "专票", "抬头"),
    ),
    (
        "food-safety",
        "food-shelf-life",
        "{food}保质期与临期处理",
        (
            "{food}在货架上按先进先出陈列，临近保质期的商品会贴黄色临期标签并打折出售。",
            "临期商品在到期前{days}天下架，过期商品一律不得销售。",
            "如购买到过期或变质的{food}，凭小票可以退货，并按《食品安全法》规定赔偿。",
            "发现异物或异味的，请保留商品和包装，不要丢弃，服务台会登记并送检。",
            "冷藏冷冻商品请在{hours}小时内放入冰箱，运输途中化冻的可以拒收。",
        ),
        ("食品安全", "过期", "临期", "退一赔十"),
    ),
    (
        "gift-cards",
        "gift-card",
        "{card}使用与挂失",
        (
            "{card}面值有{amount}元、500元和1000元，可在全国所有门店和App使用。",
            "记名卡丢失后可凭身份证到服务台挂失，挂失{days}个工作日后补办新卡，余额转入新卡。",
            "不记名卡视同现金，丢失后不能挂失，请妥善保管卡号和密码。",
            "{card}有效期{years}年，过期后可到服务台办理延期，不收取费用。",
            "{card}不能兑换现金，不能用于购买其他购物卡，余额不足时可与其他支付方式组合支付。",
        ),
        ("购物卡", "礼品卡", "挂失", "储值卡"),
    ),
    (
        "price-protection",
        "price-protect",
        "{product}价格保护规则",
        (
            "购买{product}后{days}天内，同一商品在本店降价的，可申请退还差价。",
            "价保以同一渠道、同一规格的售价为准，秒杀、团购和限时抢购价格不参加价保。",
            "申请价保请在App订单详情点击“价格保护”，或携带小票到服务台办理，差价原路退回。",
            "每个订单价保只能申请一次，赠品和使用优惠券抵扣的部分不参与计算。",
        ),
        ("价保", "降价", "差价"),
    ),
    (
        "orders",
        "order-cancel",
        "{channel_name}订单取消与修改",
        (
            "{channel_name}订单在出库前可以直接取消，款项原路退回，一般{refund_days}个工作日内到账。",
            "已出库的订单不能取消，可在签收后按退货规则办理，或拒收后由快递退回。",
            "收货地址和送货时间可在出库前修改一次，大件商品可改约两次。",
            "预售商品定金在尾款支付前不退，因我们原因无法发货的定金全额退还。",
            "缺货商品可以登记，到货后短信通知，保留{days}天。",
        ),
        ("订单", "取消订单", "修改地址", "预售"),
    ),
    (
        "service",
        "complaint-process",
        "{store}投诉处理流程与时限",
        (
            "顾客可通过服务台、400-820-{ext}、App在线客服和微信公众号提出投诉。",
            "我们在{hours}小时内首次回复，一般问题3个工作日内处理完毕，复杂问题不超过15个工作日。",
            "对员工服务态度的投诉，由门店店长负责调查，核实后给顾客书面答复。",
            "投诉处理结束后会回访顾客满意度，不满意的可以申请复核。",
            "涉及商品质量和食品安全的投诉，会同时通知供应商和质量部门。",
        ),
        ("投诉", "服务态度", "处理时限"),
    ),
)
FESTIVALS = ["国庆", "双十一", "双十二", "元旦", "春节", "三八节", "五一", "周年庆", "中秋"]
TIERS = ["普通", "银卡", "金卡", "钻石"]
CARDS = ["购物卡", "礼品卡", "储值卡", "电子礼品卡"]
ORDER_CHANNELS = ["App", "小程序", "官网", "电话订购", "门店自提"]
WEEKDAYS = ["每周二", "每周三", "每月8日", "每月18日"]
PADDING = (
    "如有疑问，可拨打客服热线400-820-{ext}，或到就近门店一楼服务台咨询。",
    "本规则自2026年{month}月1日起执行，解释权以国家法律法规为准。",
    "以上规定与国家法律法规不一致的，以法律法规为准，消费者依法享有的权利不受影响。",
)


def kb_article(n: int, rng: random.Random) -> dict[str, Any]:
    category, stem, title_template, sentences, tags = KB_TOPICS[n % len(KB_TOPICS)]
    values = {
        "store": rng.choice(STORES),
        "product": rng.choice(PRODUCTS),
        "food": rng.choice(FOODS),
        "payment": rng.choice(PAYMENTS),
        "festival": rng.choice(FESTIVALS),
        "tier": rng.choice(TIERS),
        "card": rng.choice(CARDS),
        "channel_name": rng.choice(ORDER_CHANNELS),
        "weekday": rng.choice(WEEKDAYS),
        "spaces": rng.choice([300, 450, 600, 800, 1200]),
        "open": rng.choice([8, 9, 10]),
        "close": rng.choice([19, 20, 21]),
        "free": rng.choice([1, 2]),
        "fee": rng.choice([5, 6, 8, 10]),
        "cap": rng.choice([40, 60, 80]),
        "big": rng.choice([199, 299, 300, 500, 1000, 2000]),
        "amount": rng.choice([20, 30, 50, 100, 200, 5000]),
        "hours": rng.choice([2, 3, 4, 24]),
        "days": rng.choice([3, 5, 7, 15, 30]),
        "refund_days": rng.choice(["1-3", "3-7", "7-15"]),
        "years": rng.choice([1, 2, 3]),
        "parts": rng.choice([3, 5, 10]),
        "rate": rng.choice([1, 1.2, 1.5, 2]),
        "expire": rng.choice([12, 18, 24]),
        "floor": rng.choice([3, 4, 6]),
        "ext": rng.randint(1000, 9999),
        "month": rng.randint(1, 12),
    }
    chosen = [s for s in sentences if rng.random() < 0.75] or list(sentences[:2])
    body = "".join(s.format(**values) for s in chosen)
    pads = list(PADDING)
    rng.shuffle(pads)
    while len(body) < 150 and pads:
        body += pads.pop().format(**values)
    while len(body) > 500 and len(chosen) > 2:
        chosen.pop()
        body = "".join(s.format(**values) for s in chosen)
    title = title_template.format(**values)
    article_tags = list(tags[: rng.randint(2, len(tags))])
    for key in ("product", "store", "food"):
        if "{" + key + "}" in title_template:
            article_tags.append(str(values[key]))
    return {
        "slug": f"{stem}-v{n:04d}",
        "title": title,
        "body": body,
        "category": category,
        "tags": article_tags,
        "language": "zh",
    }


SEARCH_QUERIES = (
    # simplified, as customers type them
    "怎么退货",
    "退货需要小票吗",
    "七天无理由退货",
    "没有发票能退货吗",
    "退款多久到账",
    "信用卡退款几天到账",
    "微信支付退款",
    "冰箱送货延误了怎么办",
    "送货上门安装收费吗",
    "大件送货上楼费",
    "积分什么时候过期",
    "积分怎么兑换停车券",
    "会员等级怎么保级",
    "金卡会员有什么权益",
    "停车免费多久",
    "停车场收费标准",
    "停车券用不了",
    "发票抬头写错了",
    "电子发票怎么开",
    "专票税号错了怎么换开",
    "买完降价能退差价吗",
    "价保多少天",
    "满减活动退货怎么算",
    "优惠券能叠加吗",
    "购物卡丢了怎么办",
    "储值卡挂失",
    "礼品卡过期了",
    "牛奶过期了怎么赔",
    "面包里有头发",
    "羽绒服掉色",
    "手机三包换新",
    "洗衣机漏水保修",
    "空调安装辅材收费",
    "营业时间",
    "服务台电话",
    "钱包丢了失物招领",
    "收银员态度差投诉",
    "投诉多久处理",
    "预售定金能退吗",
    "缺货登记",
    "订单怎么取消",
    "修改收货地址",
    "删除我的个人信息",
    "购物袋收费吗",
    "卡丢了",
    "临期食品打折",
    # traditional
    "積分什麼時候過期",
    "怎麼退貨",
    "退款多久到賬",
    "發票抬頭寫錯了",
    "停車免費多久",
    "禮品卡遺失怎麼辦",
    "會員等級權益",
    "送貨延誤怎麼辦",
    "價格保護",
    "電子發票",
    # English and mixed
    "refund credit card",
    "how long does a refund take",
    "parking free hours",
    "opening hours",
    "tax refund departure",
    "return without receipt",
    "lost gift card",
    "invoice title wrong",
    "iPhone退货",
    "App订单取消",
)


# =================================================================================== the load generator


@dataclass
class LoadSpec:
    """One load run, executed in the load-generator process."""

    base_url: str
    method: str
    paths: list[str]  # request i uses paths[i % len(paths)]
    bodies: list[bytes] | None  # request i sends bodies[i % len(bodies)]
    mode: Literal["open", "closed"]
    warmup_s: float
    duration_s: float
    rate: float = 0.0  # open loop: requests per second, on a fixed schedule
    concurrency: int = 1  # open loop: connection pool size; closed loop: clients
    timeout_s: float = 30.0


def run_load(spec: LoadSpec) -> dict[str, Any]:
    """Entry point of the load-generator process: run `spec` on a fresh uvloop event loop."""
    try:
        import uvloop

        runner: Callable[[Any], Any] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency of the services
        runner = asyncio.run
    gc.collect()
    gc.disable()  # no collector pauses in the middle of a schedule; the process is short-lived
    try:
        result: dict[str, Any] = runner(_open_loop(spec) if spec.mode == "open" else _closed_loop(spec))
        return result
    finally:
        gc.enable()


def _client(spec: LoadSpec) -> httpx.AsyncClient:
    limits = httpx.Limits(
        max_connections=spec.concurrency, max_keepalive_connections=spec.concurrency, keepalive_expiry=120
    )
    return httpx.AsyncClient(base_url=spec.base_url, headers=AUTH, limits=limits, timeout=spec.timeout_s)


async def _send(client: httpx.AsyncClient, spec: LoadSpec, i: int) -> tuple[int, str]:
    """One request: (status, error name); status -1 when no response came."""
    try:
        if spec.bodies is None:
            response = await client.request(spec.method, spec.paths[i % len(spec.paths)])
        else:
            response = await client.request(
                spec.method,
                spec.paths[i % len(spec.paths)],
                content=spec.bodies[i % len(spec.bodies)],
                headers=JSON_HEADERS,
            )
    except httpx.HTTPError as exc:
        return -1, type(exc).__name__
    return response.status_code, ""


async def _prewarm(client: httpx.AsyncClient, connections: int) -> None:
    """Open some keep-alive connections before the schedule starts, so the first sends do not connect."""
    await asyncio.gather(*(client.get("/healthz") for _ in range(connections)), return_exceptions=True)


async def _open_loop(spec: LoadSpec) -> dict[str, Any]:
    # Timestamps come from time.monotonic (ns resolution; the same clock as the parent's CPU sampler), not
    # loop.time(): uvloop's loop clock only advances in whole milliseconds.
    clock = time.monotonic
    loop = asyncio.get_running_loop()
    n_warm = round(spec.warmup_s * spec.rate)
    total = n_warm + round(spec.duration_s * spec.rate)
    # per request: scheduled offset from t0, send lag behind schedule, latency from schedule, status
    # (a request still unanswered when the drain timeout ends keeps NaN: it counts as an error, latency inf)
    records = [(i / spec.rate, float("nan"), float("nan"), 0) for i in range(total)]
    errors: Counter[str] = Counter()
    async with _client(spec) as client:
        await _prewarm(client, min(spec.concurrency, 16))
        t0 = clock() + 0.1

        async def one(i: int, scheduled: float) -> None:
            sent = clock()
            status, error = await _send(client, spec, i)
            records[i] = (scheduled - t0, sent - scheduled, clock() - scheduled, status)
            if error:
                errors[error] += 1

        pending: set[asyncio.Task[None]] = set()
        for i in range(total):
            scheduled = t0 + i / spec.rate
            # The event loop's timers are millisecond-grained: sleep, then check the real clock again.
            while (delay := scheduled - clock()) > 0.0002:  # noqa: ASYNC110 - a clock, not a condition
                await asyncio.sleep(delay)
            task = loop.create_task(one(i, scheduled))
            pending.add(task)
            task.add_done_callback(pending.discard)
        schedule_end = clock()
        unfinished = 0
        if pending:
            _, still = await asyncio.wait(set(pending), timeout=spec.timeout_s)
            unfinished = len(still)
            for task in still:
                task.cancel()
    return {
        "t0": t0,
        "warmup_requests": n_warm,
        "schedule_seconds": schedule_end - t0,
        "records": records,
        "transport_errors": dict(errors),
        "unfinished": unfinished,
    }


async def _closed_loop(spec: LoadSpec) -> dict[str, Any]:
    clock = time.monotonic
    # per request: start offset from t0, latency, status
    records: list[tuple[float, float, int]] = []
    errors: Counter[str] = Counter()
    counter = itertools.count()
    async with _client(spec) as client:
        await _prewarm(client, spec.concurrency)
        t0 = clock()
        end = t0 + spec.warmup_s + spec.duration_s

        async def worker() -> None:
            while (start := clock()) < end:
                status, error = await _send(client, spec, next(counter))
                records.append((start - t0, clock() - start, status))
                if error:
                    errors[error] += 1

        await asyncio.gather(*(worker() for _ in range(spec.concurrency)))
    return {"t0": t0, "records": records, "transport_errors": dict(errors)}


# ====================================================================================== results & stats


@dataclass
class LoadResult:
    """Summary of one measured window (warm-up left out)."""

    name: str
    mode: str
    offered_rps: float | None
    window_s: float
    requests: int
    completed: int
    sent_rps: float
    completed_rps: float
    errors: int
    statuses: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    over_target: int = 0  # requests slower than the target, when there is one
    send_lag_p99_ms: float = 0.0  # open loop: how late the generator itself sent
    send_lag_max_ms: float = 0.0
    slices: list[dict[str, float]] = field(default_factory=list)  # per time slice of the window
    worst_seconds: list[dict[str, float]] = field(default_factory=list)  # 1-s intervals with most slow requests
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per process group in the window
    window: tuple[float, float] = (0.0, 0.0)  # monotonic clock
    latencies_ms: list[float] = field(default_factory=list, repr=False)


def pct(values: np.ndarray[Any, Any], q: float) -> float:
    """Percentile by the nearest rank at or above (no interpolation: an unanswered request is +inf)."""
    return float(np.percentile(values, q, method="higher")) if len(values) else float("nan")


def summarise(
    name: str, raw: dict[str, Any], spec: LoadSpec, expect: int, *, target_ms: float | None = None, slice_s: float = 10
) -> LoadResult:
    if spec.mode == "open":
        rows = raw["records"][raw["warmup_requests"] :]
        offsets = np.array([r[0] for r in rows]) - spec.warmup_s
        lags = np.array([r[1] for r in rows]) * 1000
        lags = lags[np.isfinite(lags)]
        latencies = np.array([r[2] for r in rows]) * 1000
        statuses = [r[3] for r in rows]
        window_s = spec.duration_s
        done = ~np.isnan(latencies)
        completed_in_window = int(np.sum(done & (offsets + latencies / 1000 <= window_s)))
    else:
        rows = [r for r in raw["records"] if spec.warmup_s <= r[0] < spec.warmup_s + spec.duration_s]
        offsets = np.array([r[0] for r in rows]) - spec.warmup_s
        latencies = np.array([r[1] for r in rows]) * 1000
        lags = np.zeros(0)
        statuses = [r[2] for r in rows]
        window_s = spec.duration_s
        ends = np.array([r[0] + r[1] for r in raw["records"]]) - spec.warmup_s
        completed_in_window = int(np.sum((ends >= 0) & (ends <= window_s)))
    ok = np.array([s == expect for s in statuses], dtype=bool)
    measured = np.where(np.isnan(latencies), np.inf, latencies)
    status_counts = Counter(str(s) if s >= 0 else "transport error" for s in statuses)
    slices = []
    for start in np.arange(0, window_s, slice_s):
        inside = (offsets >= start) & (offsets < start + slice_s)
        part = measured[inside]
        slices.append(
            {
                "from_s": float(start),
                "requests": int(inside.sum()),
                "p50_ms": pct(part, 50),
                "p99_ms": pct(part, 99),
                "max_ms": float(part.max()) if len(part) else float("nan"),
                "over_target": int(np.sum(part > target_ms)) if target_ms else 0,
            }
        )
    worst: list[dict[str, float]] = []
    if target_ms and len(measured):
        seconds = np.floor(offsets).astype(int)
        slow = Counter(int(x) for x in seconds[measured > target_ms])
        worst = [
            {"second": sec, "over_target": n, "max_ms": float(measured[seconds == sec].max())}
            for sec, n in slow.most_common(8)
        ]
    t_start = raw["t0"] + spec.warmup_s
    return LoadResult(
        name=name,
        mode=spec.mode,
        offered_rps=spec.rate if spec.mode == "open" else None,
        window_s=window_s,
        requests=len(rows),
        completed=completed_in_window,
        sent_rps=len(rows) / window_s,
        completed_rps=completed_in_window / window_s,
        errors=int((~ok).sum()),
        statuses=dict(status_counts),
        p50_ms=pct(measured, 50),
        p90_ms=pct(measured, 90),
        p99_ms=pct(measured, 99),
        max_ms=float(measured.max()) if len(measured) else float("nan"),
        mean_ms=float(np.mean(measured[np.isfinite(measured)])) if len(measured) else float("nan"),
        over_target=int(np.sum(measured > target_ms)) if target_ms else 0,
        send_lag_p99_ms=pct(lags, 99) if len(lags) else 0.0,
        send_lag_max_ms=float(lags.max()) if len(lags) else 0.0,
        slices=slices,
        worst_seconds=worst,
        window=(t_start, t_start + window_s),
        latencies_ms=[round(float(x), 3) for x in measured],
    )


# =========================================================================================== CPU sampler


def _proc_cpu_seconds(pid: int, *, kernel_only: bool = False) -> float | None:
    """utime + stime of a process in seconds (only stime with `kernel_only`)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[12]) if kernel_only else int(fields[11]) + int(fields[12])) / CLK_TCK


def _machine_jiffies() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class CpuSampler(threading.Thread):
    """Every `interval` s, the CPU seconds used so far by each named process, by the PostgreSQL backends
    of our databases (found by their process title, `postgres: … <db> 127.0.0.1(port) …`) and by the
    whole machine. `usage(t0, t1)` reads the difference over a window."""

    def __init__(self, interval: float = 0.25) -> None:
        super().__init__(name="cpu-sampler", daemon=True)
        self.interval = interval
        self.pids: dict[str, int] = {}
        self.databases: list[str] = []
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop_event = threading.Event()
        self._pg_base: dict[int, float] = {}
        self._pg_last: dict[int, float] = {}

    def _pg_backends(self) -> float:
        """CPU seconds of our databases' backends since each was first seen; a backend that has exited
        keeps its last reading, so the sum never goes down when the pool closes a connection."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if title.startswith("postgres:") and any(f" {db} " in title for db in self.databases):
                seconds = _proc_cpu_seconds(int(entry.name))
                if seconds is not None:
                    pid = int(entry.name)
                    # A backend first seen mid-run counts from then on (its start-up is a few ms at most).
                    self._pg_base.setdefault(pid, seconds if self.samples else 0.0)
                    self._pg_last[pid] = seconds
        return sum(self._pg_last[pid] - base for pid, base in self._pg_base.items())

    def sample(self) -> None:
        values: dict[str, float] = {}
        for name, pid in list(self.pids.items()):
            seconds = _proc_cpu_seconds(pid)
            kernel = _proc_cpu_seconds(pid, kernel_only=True)
            if seconds is not None and kernel is not None:
                values[name] = seconds
                values[f"{name}:kernel"] = kernel
        values["postgres"] = self._pg_backends()
        busy, total = _machine_jiffies()
        values["machine_busy"] = busy / CLK_TCK
        values["machine_total"] = total / CLK_TCK
        self.samples.append((time.monotonic(), values))

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()

    def usage(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds per key between the samples nearest inside [start, end] (and the window covered)."""
        inside = [s for s in self.samples if start - self.interval / 2 <= s[0] <= end + self.interval / 2]
        if len(inside) < 2:
            return {}
        (t_a, a), (t_b, b) = inside[0], inside[-1]
        out = {k: b[k] - a[k] for k in b if k in a}
        out["seconds"] = t_b - t_a
        return out


CPU_GROUPS = ("complaint-api", "customer-api", "postgres", "loadgen", "bench")


def peak_core_pct(sampler: CpuSampler, key: str, start: float, end: float) -> float | None:
    """The highest CPU use of `key` (% of one core) over any one sampling interval inside [start, end]."""
    inside = [(t, v[key]) for t, v in sampler.samples if start <= t <= end and key in v]
    rates = [(b - a) / (tb - ta) for (ta, a), (tb, b) in itertools.pairwise(inside) if tb > ta]
    return 100 * max(rates) if rates else None


def cpu_shares(usage: dict[str, float], requests_per_s: float) -> dict[str, float]:
    """% of one core and CPU ms per request for each process group, from `CpuSampler.usage`."""
    if not usage or usage.get("seconds", 0) <= 0:
        return {}
    seconds = usage["seconds"]
    out: dict[str, float] = {}
    for key in CPU_GROUPS:
        if key in usage:
            out[f"{key}_core_pct"] = 100 * usage[key] / seconds
            out[f"{key}_ms_per_req"] = 1000 * usage[key] / seconds / requests_per_s if requests_per_s else 0.0
            if usage.get(f"{key}:kernel") is not None and usage[key] > 0:
                out[f"{key}_kernel_share"] = usage[f"{key}:kernel"] / usage[key]
    cores = os.cpu_count() or 1
    out["machine_busy_pct"] = 100 * usage["machine_busy"] / max(usage["machine_total"], 1e-9)
    ours = sum(usage.get(k, 0.0) for k in CPU_GROUPS)
    out["others_core_pct"] = max(0.0, 100 * (usage["machine_busy"] / usage["machine_total"] * cores - ours / seconds))
    return out


class PgActivitySampler(threading.Thread):
    """Every `interval` s, what the sessions of one database are doing (`pg_stat_activity`): running,
    waiting on a lock, flushing WAL, or idle in a transaction while the application works."""

    QUERY = """
        SELECT state, coalesce(wait_event_type, ''), coalesce(wait_event, ''),
               left(regexp_replace(query, '\\s+', ' ', 'g'), 70)
        FROM pg_stat_activity
        WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'
    """

    def __init__(self, admin_url: str, database: str, interval: float = 0.02) -> None:
        super().__init__(name="pg-activity", daemon=True)
        self.admin_url = admin_url
        self.database = database
        self.interval = interval
        self.samples: list[tuple[float, list[tuple[str, str, str, str]]]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        with suppress(Exception):  # a diagnostic: never fail the benchmark over it
            asyncio.run(self._run())

    async def _run(self) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(self.admin_url), timeout=10)
        try:
            while not self._stop_event.is_set():
                rows = await conn.fetch(self.QUERY, self.database)
                self.samples.append((time.monotonic(), [tuple(r) for r in rows]))
                await asyncio.sleep(self.interval)
        finally:
            await conn.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    def summary(self, start: float, end: float) -> dict[str, Any]:
        """Mean number of sessions per (what, statement) over the samples inside the window."""
        inside = [rows for t, rows in self.samples if start <= t <= end]
        counts: Counter[tuple[str, str]] = Counter()
        present: Counter[tuple[str, str]] = Counter()
        for rows in inside:
            seen: set[tuple[str, str]] = set()
            for state, wait_type, wait_event, query in rows:
                if state == "idle":
                    continue
                if state == "active" and not wait_type:
                    what = "active, running in PostgreSQL"
                elif state == "active":
                    what = f"active, waiting: {wait_type}/{wait_event}"
                elif state.startswith("idle in transaction"):
                    what = "idle in transaction (PostgreSQL waits for complaint-api)"
                else:
                    what = state
                key = (what, query)
                counts[key] += 1
                seen.add(key)
            present.update(seen)
        n = len(inside)
        rows_out = (
            [
                {
                    "what": what,
                    "statement": query,
                    "mean_sessions": c / n,
                    "share_of_samples": present[(what, query)] / n,
                }
                for (what, query), c in counts.most_common()
            ]
            if n
            else []
        )
        return {"samples": n, "interval_s": self.interval, "rows": rows_out}


# ============================================================================================== servers


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def console_script(name: str) -> str:
    for candidate in (Path(sys.executable).parent / name, REPO_ROOT / ".venv" / "bin" / name):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"cannot find the `{name}` console script; install the services into the venv")
    return found


def log_tail(path: Path, lines: int = 30) -> str:
    with suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def wait_ready(service: Service, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(
                f"{service.name} exited with {service.process.returncode}:\n{log_tail(service.log_path)}"
            )
        with suppress(httpx.TransportError):
            if httpx.get(service.url + "/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{service.name} was not ready within {timeout:.0f} s:\n{log_tail(service.log_path)}")


@contextmanager
def serve(name: str, env: dict[str, str], workdir: Path) -> Iterator[Service]:
    """`<name> serve --host 127.0.0.1 --port <free>` (migrations first); SIGINT, then SIGKILL, on exit."""
    port = free_port()
    log_path = workdir / f"{name}.log"
    command = [console_script(name), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=workdir,  # away from the repository, so no stray .env is read
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the bench only; it stops the servers itself
        )
        service = Service(name, process, port, log_path)
        try:
            wait_ready(service)
            log(f"{name} is up on {service.url} (pid {process.pid})")
            yield service
        finally:
            stop(process)


def service_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        CRM_ENV="development",
        CRM_DEV_API_KEY=API_KEY,
        CRM_ACCESS_LOG="false",
        CRM_DATA_DIR=str(data_dir),
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


# ============================================================================================= database


def asyncpg_dsn(url: str) -> str:
    return re.sub(r"^postgresql\+asyncpg://", "postgresql://", url)


def with_database(admin_url: str, name: str) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(scheme="postgresql+asyncpg", path=f"/{name}"))


async def _pg(url: str, statement: str, *, fetch: bool = False) -> Any:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        if fetch:
            return [tuple(r) for r in await conn.fetch(statement)]
        await conn.execute(statement)
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def pg(url: str, statement: str, *, fetch: bool = False) -> Any:
    return asyncio.run(_pg(url, statement, fetch=fetch))


@contextmanager
def throwaway_databases(admin_url: str, labels: Sequence[str], keep: bool) -> Iterator[dict[str, str]]:
    """Create one fresh database per label; yield {label: SQLAlchemy URL}; drop them all afterwards."""
    stamp = f"{dt.datetime.now():%Y%m%d_%H%M%S}_{uuid.uuid4().hex[:6]}"
    created: dict[str, str] = {}
    try:
        for label in labels:
            name = f"crm_bench_{label}_{stamp}"
            pg(admin_url, f'CREATE DATABASE "{name}"')
            created[label] = name
            log(f"created database {name}")
        yield {label: with_database(admin_url, name) for label, name in created.items()}
    finally:
        for name in created.values():
            if keep:
                log(f"kept database {name}")
                continue
            try:
                pg(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                log(f"dropped database {name}")
            except Exception as exc:  # noqa: BLE001 - keep dropping the others, say what is left
                log(f"could not drop database {name}: {exc}")


# ============================================================================================== seeding


async def _post_all(base_url: str, path: str, bodies: Sequence[dict[str, Any]], concurrency: int) -> list[Any]:
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=60) as client:

        async def one(body: dict[str, Any]) -> Any:
            async with limit:
                response = await client.post(path, json=body)
            if response.status_code != 201:
                raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:300]}")
            return response.json()

        return list(await asyncio.gather(*(one(b) for b in bodies)))


def seed_customers(customer_api: Service, count: int, rng: random.Random) -> list[str]:
    phones: set[str] = set()
    bodies = [customer_body(i, rng, phones) for i in range(count)]
    started = time.perf_counter()
    created = asyncio.run(_post_all(customer_api.url, "/v1/customers", bodies, concurrency=8))
    log(f"seeded {count} customers in {time.perf_counter() - started:.1f} s")
    return [str(c["id"]) for c in created]


def seed_starter_kb(env: dict[str, str], workdir: Path) -> str:
    done = subprocess.run(
        [console_script("complaint-api"), "seed-kb"], cwd=workdir, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"complaint-api seed-kb failed: {done.stdout}\n{done.stderr}")
    message = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    log(f"complaint-api seed-kb: {message}")
    return message


# ============================================================================================ profiling

# py-spy frames read `function (file:line)`. A sample goes to the first PHASE with a marker anywhere in its
# stack (so the more specific phases come first: everything under `next_number` is the number, whatever
# SQLAlchemy does below it); a sample in no phase goes to the LAYER of its innermost frame that has one.
PROFILE_PHASES: list[tuple[str, tuple[str, ...]]] = [
    ("Garbage collection (CPython's cyclic GC, any generation)", ("gc_collect_main", "gc_collect_with_callback")),
    (
        "Socket write syscalls to customer-api, PostgreSQL, the client (loopback TCP; includes being preempted "
        "by the peer the write wakes)",
        ("UVStream__try_write", "UVStream__exec_write"),
    ),
    (
        "Background jobs (SLA sweep, snapshots, customer feed, webhooks)",
        ("sweep_once", "background_jobs", "webhooks/jobs.py", "webhook_delivery"),
    ),
    ("KB: index (re)build", ("build_index", "_published_articles")),
    ("KB: revision check (1 SELECT per search)", ("read_revision",)),
    ("KB: NFKC and OpenCC traditional→simplified folding", ("fold (complaint_api/kb/analysis.py", "opencc")),
    ("KB: jieba segmentation and stemming", ("jieba/", "tokens (complaint_api/kb/analysis.py", "snowballstemmer")),
    ("KB: snippets (the hits' matching words, cut from their bodies)", ("snippet (", "_marks (")),
    ("KB: BM25 scoring (sparse-matrix gather, numpy)", ("KbIndex.search",)),
    ("KB: other (index look-up, lock)", ("current_index", "search_articles", "suggest (")),
    ("customer-api look-up (PeerClient, httpx, JSON)", ("lookup_customer", "fetch_customer")),
    ("Complaint number (upsert on complaint_numbers)", ("next_number",)),
    ("SLA: policies and due times", ("set_due_times", "policies (", "complaint_api/sla/")),
    (
        "Complaint + event rows: build and ORM flush (2 INSERTs)",
        ("take_complaint (complaint_api/complaints/service.py", "_event ("),
    ),
    (
        "Response: pydantic model + JSON",
        ("_render (", "model_response (", "search (complaint_api/kb/router.py", "SearchHit"),
    ),
    ("COMMIT and session close", ("AsyncSession.commit", "AsyncSession.close", "AsyncSession.rollback")),
    ("Auth (API key)", ("current_principal", "HTTPBearer", "crm_kit/auth.py")),
    (
        "Thread-pool hops: sync `def` dependencies run via anyio.to_thread",
        ("run_in_threadpool", "anyio/to_thread.py", "run_sync_in_worker_thread", "WorkerThread.run"),
    ),
    ("Request body: read, JSON, validation", ("request_body_to_args", "Request.json", "Request.body", "_get_body")),
    ("Idempotency wrapper", ("crm_kit/idempotency.py",)),
    ("Session / connection checkout", ("_request_session", "session_scope")),
]
PROFILE_LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("SQLAlchemy + asyncpg (other)", ("sqlalchemy/", "asyncpg/")),
    ("FastAPI / Starlette / pydantic (routing, dependencies, middleware)", ("fastapi/", "starlette/", "pydantic")),
    ("crm_kit middleware, metrics, logging", ("crm_kit/", "prometheus_client/", "structlog/")),
    ("uvicorn, httptools, event loop (sockets, callbacks)", ("uvicorn/", "httptools", "asyncio/", "uvloop")),
    ("worker threads (thread pool)", ("threading.py", "concurrent/futures")),
]


def bucket_of(frames: Sequence[str]) -> str:
    stack = ";".join(frames)
    for bucket, markers in PROFILE_PHASES:
        if any(marker in stack for marker in markers):
            return bucket
    for frame in reversed(frames):
        for bucket, markers in PROFILE_LAYERS:
            if any(marker in frame for marker in markers):
                return bucket
    return "other (no Python frame: C code, GC)"


# Frames of a thread that is only waiting (the thread pools' idle workers): not CPU. With `--native` the
# innermost frames are C (pthread_cond_timedwait), so the Python frame is looked for anywhere in the stack.
IDLE_FRAMES = ("Condition.wait (threading.py", "_worker (concurrent/futures/thread.py", "Queue.get (queue.py")


def bucket_profile(path: Path) -> tuple[list[tuple[str, int]], int]:
    """Sort `py-spy --format raw` samples (`frame;frame;... count`) into buckets, most samples first.
    Samples of idle pool threads are left out."""
    counts: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        if any(marker in stack for marker in IDLE_FRAMES):
            continue
        frames = stack.split(";")
        counts[bucket_of(frames)] += int(count_text)
    return counts.most_common(), sum(counts.values())


def py_spy() -> str | None:
    for candidate in (Path(sys.executable).parent / "py-spy", REPO_ROOT / ".venv" / "bin" / "py-spy"):
        if candidate.exists():
            return str(candidate)
    return shutil.which("py-spy")


def profile_run(
    pool: ProcessPoolExecutor, spec: LoadSpec, pid: int, seconds: float, out: Path
) -> tuple[list[tuple[str, int]], int, dict[str, Any]]:
    """Run `spec` again while py-spy samples process `pid` for `seconds`, starting after the warm-up."""
    tool = py_spy()
    if tool is None:
        raise RuntimeError("py-spy is not installed: pip install -r bench/requirements.txt")
    future: Future[dict[str, Any]] = pool.submit(run_load, spec)
    time.sleep(spec.warmup_s + 1.0)
    command = [tool, "record", "--pid", str(pid), "--duration", str(round(seconds)), "--rate", "100"]
    # Blocking mode (consistent stacks); --native adds C frames, which is how garbage collection shows up.
    command += ["--native", "--format", "raw", "--output", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    raw = future.result()
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"py-spy failed ({done.returncode}): {done.stderr[-500:]}")
    buckets, total = bucket_profile(out)
    return buckets, total, raw


# ============================================================================================= the runs


@dataclass
class Phase:
    """A measured load, the CPU during its window and, for the open-loop runs, PostgreSQL's view."""

    result: LoadResult
    cpu_shares: dict[str, float]
    pg_activity: dict[str, Any] = field(default_factory=dict)
    stalls: list[dict[str, Any]] = field(default_factory=list)  # what the machine did in the worst seconds


def measured(
    pool: ProcessPoolExecutor,
    sampler: CpuSampler,
    name: str,
    spec: LoadSpec,
    expect: int,
    *,
    target_ms: float | None = None,
    slice_s: float = 10,
    activity: tuple[str, str] | None = None,
) -> Phase:
    """Run `spec` in the load-generator process; `activity` = (admin URL, database) to sample."""
    started = time.monotonic()
    watcher = PgActivitySampler(*activity) if activity else None
    if watcher:
        watcher.start()
    try:
        raw = pool.submit(run_load, spec).result()
    finally:
        if watcher:
            watcher.stop()
    result = summarise(name, raw, spec, expect, target_ms=target_ms, slice_s=slice_s)
    usage = sampler.usage(*result.window)
    result.cpu = usage
    phase = Phase(result, cpu_shares(usage, result.completed_rps))
    if watcher:
        phase.pg_activity = watcher.summary(*result.window)
    for worst in result.worst_seconds[:4]:
        # The requests scheduled in that second, and the time they waited: look at [second, second + 1.5 s).
        a = result.window[0] + worst["second"]
        b = a + 1.5
        phase.stalls.append(
            {
                **worst,
                "cpu": cpu_shares(sampler.usage(a, b), 0.0),
                "complaint_api_peak_pct": peak_core_pct(sampler, "complaint-api", a, b),
                "pg": by_what(watcher.summary(a, b)) if watcher else {},
            }
        )
    log(
        f"{name}: {result.requests} requests, {result.completed_rps:.1f} req/s completed, errors {result.errors}, "
        f"p50 {result.p50_ms:.1f} ms, p90 {result.p90_ms:.1f}, p99 {result.p99_ms:.1f}, max {result.max_ms:.1f} "
        f"({time.monotonic() - started:.0f} s)"
    )
    if raw.get("transport_errors"):
        log(f"{name}: transport errors {raw['transport_errors']}")
    return phase


def search_path(query: str, limit: int = 5) -> str:
    return f"/v1/kb/search?q={quote(query)}&limit={limit}"


def load_kb(complaint_api: Service, target_total: int, rng: random.Random) -> dict[str, Any]:
    """POST generated articles until `target_total` published articles exist; time it."""
    present = 0
    with httpx.Client(base_url=complaint_api.url, headers=AUTH, timeout=30) as client:
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100, "status": "published"}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/v1/kb/articles", params=params).json()
            present += len(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
    articles = [kb_article(n, rng) for n in range(max(0, target_total - present))]
    started = time.perf_counter()
    asyncio.run(_post_all(complaint_api.url, "/v1/kb/articles", articles, concurrency=8))
    seconds = time.perf_counter() - started
    lengths = [len(a["body"]) for a in articles]
    log(f"loaded {len(articles)} KB articles in {seconds:.1f} s ({present} were there)")
    return {
        "present_before": present,
        "created": len(articles),
        "total": present + len(articles),
        "seconds": seconds,
        "per_s": len(articles) / seconds if seconds else 0.0,
        "body_chars_min": min(lengths, default=0),
        "body_chars_median": float(np.median(lengths)) if lengths else 0.0,
        "body_chars_max": max(lengths, default=0),
        "categories": dict(Counter(a["category"] for a in articles)),
    }


def timed_get(url: str, path: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    response = httpx.get(url + path, headers=AUTH, timeout=120)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
    return elapsed * 1000, response.json()


GC_PROBE = """
import gc, json, statistics, time
from complaint_api.main import create_app
import complaint_api.kb.analysis  # jieba's dictionary, loaded at import as in the server
app = create_app()
times = []
for _ in range(5):
    started = time.perf_counter()
    gc.collect()
    times.append((time.perf_counter() - started) * 1000)
print(json.dumps({"full_gc_ms": statistics.median(times), "tracked_objects": len(gc.get_objects()),
                  "thresholds": gc.get_threshold()}))
"""


def gc_probe(workdir: Path) -> dict[str, Any]:
    """How long one full garbage collection takes in a process holding what complaint-api loads (its
    modules, the app, jieba's dictionary): a pause every request in flight waits out."""
    done = subprocess.run(
        [sys.executable, "-c", GC_PROBE], cwd=workdir, capture_output=True, text=True, check=False, timeout=120
    )
    if done.returncode != 0:
        return {"error": done.stderr[-300:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# =============================================================================================== report


def machine(pg_version: str) -> dict[str, str]:
    return {
        **machine_facts(),
        "postgres": pg_version,
        "loadavg_at_start": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def ms(value: float) -> str:
    return "—" if value != value else f"{value:,.1f}"  # NaN → dash


def verdict(p99: float, target: float, errors: int) -> str:
    ok = p99 < target and errors == 0
    return f"p99 < {target:.0f} ms: **{'met' if ok else 'NOT met'}**"


def load_row(label: str, phase: Phase, target: str) -> str:
    r = phase.result
    offered = f"{r.offered_rps:.0f}" if r.offered_rps else "—"
    return (
        f"| {label} | {offered} | {r.sent_rps:.1f} / {r.completed_rps:.1f} | {r.requests:,} | {r.errors} "
        f"| {ms(r.p50_ms)} | {ms(r.p90_ms)} | {ms(r.p99_ms)} | {ms(r.max_ms)} | {target} |"
    )


LOAD_HEADER = (
    "| run | offered req/s | sent / completed req/s | requests | errors "
    "| p50 ms | p90 ms | p99 ms | max ms | target |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
)


def cpu_table(phases: Sequence[tuple[str, Phase]]) -> str:
    out = [
        "| CPU during the window | complaint-api | customer-api | PostgreSQL (our backends) | load generator "
        "| bench (samplers) | rest of the machine¹ | machine busy |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, phase in phases:
        s = phase.cpu_shares
        if not s:
            continue

        def cell(key: str, s: dict[str, float] = s) -> str:
            if f"{key}_core_pct" not in s:
                return "—"
            kernel = s.get(f"{key}_kernel_share")
            kernel_text = f", {kernel:.0%} in the kernel" if kernel is not None else ""
            return f"{s[f'{key}_core_pct']:.0f}% ({s[f'{key}_ms_per_req']:.2f} ms/req{kernel_text})"

        out.append(
            f"| {label} | {cell('complaint-api')} | {cell('customer-api')} | {cell('postgres')} | {cell('loadgen')} "
            f"| {cell('bench')} | {s['others_core_pct']:.0f}% | {s['machine_busy_pct']:.0f}% of {os.cpu_count()} "
            "cores |"
        )
    out += [
        "",
        "% of one core (from /proc, sampled every 0.25 s); ms/req = CPU milliseconds per completed request.  ",
        "¹ everything else on this shared machine: other users' processes, PostgreSQL's background writers, the "
        "kernel.",
    ]
    return "\n".join(out)


# The statements an intake transaction runs after taking the per-day number (the row lock on
# complaint_numbers) and before its COMMIT ends: a session whose last statement is one of these, and which is
# not itself waiting for the lock, holds the lock. Their mean count is the share of time the lock is held.
NUMBER_LOCK_HELD = (
    "INSERT INTO complaint_numbers",
    "SELECT sla_policies",
    "INSERT INTO complaints ",
    "INSERT INTO complaint_events",
    "COMMIT",
)


def by_what(summary: dict[str, Any]) -> dict[str, float]:
    """Mean number of sessions per kind of activity, statements merged; `holder`: holding the number lock."""
    out: Counter[str] = Counter()
    for row in summary.get("rows", []):
        what = row["what"]
        if row["statement"].startswith(NUMBER_LOCK_HELD) and "Lock/" not in what:
            out["holder"] += row["mean_sessions"]
        key = (
            "lock"
            if "Lock/" in what
            else "wal"
            if "IO/WAL" in what
            else "idle_tx"
            if what.startswith("idle in transaction")
            else "running"
            if what.startswith("active, running")
            else "other"
        )
        out[key] += row["mean_sessions"]
    return dict(out)


def stall_table(phase: Phase, target_ms: float) -> str:
    if not phase.stalls:
        return ""
    out = [
        f"The seconds with the most requests over {target_ms:.0f} ms, and what ran then (from the request's "
        "scheduled second to 1.5 s later; CPU in % of one core, PostgreSQL = mean number of complaint-api's "
        "sessions in each state):",
        "",
        f"| second | > {target_ms:.0f} ms | max ms | complaint-api CPU (peak 0.25 s) | customer-api CPU "
        "| PostgreSQL CPU | rest of machine | PG: waiting on a lock | PG: number lock held | PG: WAL flush (COMMIT) "
        "| PG: idle in transaction | PG: running |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for stall in phase.stalls:
        cpu, pg_state = stall["cpu"], stall["pg"]

        def core(key: str, cpu: dict[str, float] = cpu) -> str:
            value = cpu.get(f"{key}_core_pct")
            return "—" if value is None else f"{value:.0f}%"

        rest = f"{cpu['others_core_pct']:.0f}%" if "others_core_pct" in cpu else "—"
        peak = "—" if stall.get("complaint_api_peak_pct") is None else f"{stall['complaint_api_peak_pct']:.0f}%"
        out.append(
            f"| {int(stall['second'])} | {int(stall['over_target'])} | {stall['max_ms']:.0f} | {core('complaint-api')} "
            f"({peak}) "
            f"| {core('customer-api')} | {core('postgres')} | {rest} | {pg_state.get('lock', 0):.2f} "
            f"| {pg_state.get('holder', 0):.0%} "
            f"| {pg_state.get('wal', 0):.2f} | {pg_state.get('idle_tx', 0):.2f} | {pg_state.get('running', 0):.2f} |"
        )
    return "\n".join(out)


def activity_table(phase: Phase, top: int = 8) -> str:
    activity = phase.pg_activity
    if not activity or not activity.get("samples"):
        return "(no pg_stat_activity samples)"
    out = [
        f"complaint-api's PostgreSQL sessions, {activity['samples']} samples of `pg_stat_activity` every "
        f"{activity['interval_s'] * 1000:.0f} ms in the window (idle sessions left out).",
        "",
        "| what | statement (start) | mean sessions | % of samples |",
        "| --- | --- | ---: | ---: |",
    ]
    held = by_what(activity).get("holder", 0.0)
    waiting = by_what(activity).get("lock", 0.0)
    if held or waiting:
        out[0] += (
            f" The per-day number's row lock (`complaint_numbers`) was held {held:.0%} of the time, with "
            f"{waiting:.2f} sessions waiting for it on average."
        )
    for row in activity["rows"][:top]:
        statement = row["statement"].replace("|", "\\|")
        out.append(f"| {row['what']} | `{statement}` | {row['mean_sessions']:.2f} | {row['share_of_samples']:.0%} |")
    return "\n".join(out)


def slice_table(phase: Phase, target_ms: float) -> str:
    out = [
        f"| seconds into the window | requests | p50 ms | p99 ms | max ms | > {target_ms:.0f} ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in phase.result.slices:
        out.append(
            f"| {s['from_s']:.0f}–{s['from_s'] + (phase.result.window_s / len(phase.result.slices)):.0f} "
            f"| {s['requests']} | {ms(s['p50_ms'])} | {ms(s['p99_ms'])} | {ms(s['max_ms'])} | {s['over_target']} |"
        )
    if phase.result.worst_seconds:
        worst = ", ".join(
            f"{int(w['second'])} s: {int(w['over_target'])} (max {w['max_ms']:.0f} ms)"
            for w in phase.result.worst_seconds
        )
        out += ["", f"Seconds of the window with the most requests over {target_ms:.0f} ms: {worst}."]
    return "\n".join(out)


def profile_table(title: str, buckets: list[tuple[str, int]], total: int, cpu_ms_per_req: float | None) -> str:
    out = [f"**{title}** ({total:,} samples of the server's busy thread(s))", ""]
    out += ["| where the CPU goes | share | ≈ CPU ms per request |", "| --- | ---: | ---: |"]
    for bucket, count in buckets:
        share = count / total if total else 0.0
        per_req = f"{share * cpu_ms_per_req:.2f}" if cpu_ms_per_req else "—"
        out.append(f"| {bucket} | {share:.1%} | {per_req} |")
    return "\n".join(out)


def render(report: dict[str, Any], phases: dict[str, Phase], args: argparse.Namespace) -> str:
    m = report["machine"]
    intake, search = phases["intake_open"], phases["search_open"]
    out = [
        f"## complaint-api benchmark, {report['date']}",
        "",
        f"- Machine: **nproc {m['nproc']}**, CPU model `{m['cpu']}`, Linux {m['kernel']}, Python {m['python']}, "
        f"PostgreSQL {m['postgres']}; load average at the start {m['loadavg_at_start']} (shared machine).",
        f"- Command (from the repository root): `{report['command']}`; code at `{report['revision']}`.",
        "- Servers: `customer-api serve` and `complaint-api serve` (uvicorn, 1 worker each, `CRM_ENV=development`, "
        "`CRM_ACCESS_LOG=false`), each on its own throw-away PostgreSQL database (dropped afterwards). Load "
        "generator: a separate Python process (uvloop + httpx, keep-alive pool). Open-loop runs send on a fixed "
        "schedule whatever the responses and time every request **from its scheduled send time** (queueing "
        "included, no coordinated omission); closed-loop runs time from the actual send.",
        f"- Raw figures: `bench/results/{report['results_file']}` (git-ignored).",
        "",
        f"### 1. Complaint intake, `POST /v1/complaints` ({report['customers']} customers, starter KB of "
        f"{report['kb_before_intake']} articles)",
        "",
        LOAD_HEADER,
        load_row(
            f"**open loop {args.intake_rate:g} req/s**, {args.intake_seconds:g} s after {args.intake_warmup:g} s "
            "warm-up",
            intake,
            verdict(intake.result.p99_ms, INTAKE_P99_TARGET_MS, intake.result.errors),
        ),
        load_row(
            f"closed loop, {args.closed_clients} clients, {args.closed_seconds:g} s (max throughput, information)",
            phases["intake_closed"],
            "information",
        ),
        load_row("one at a time, no other load (service time, information)", phases["intake_serial"], "information"),
        *[
            load_row(
                f"open loop {phases[key].result.offered_rps:g} req/s, {phases[key].result.window_s:g} s (diagnostic)",
                phases[key],
                verdict(phases[key].result.p99_ms, INTAKE_P99_TARGET_MS, phases[key].result.errors).replace("**", ""),
            )
            for key in phases
            if key.startswith("intake_rate_")
        ],
        "",
        f"Generator: sends behind schedule p99 {intake.result.send_lag_p99_ms:.1f} ms, max "
        f"{intake.result.send_lag_max_ms:.1f} ms; {intake.result.over_target} of {intake.result.requests:,} requests "
        f"took longer than {INTAKE_P99_TARGET_MS:.0f} ms; statuses {intake.result.statuses}; snapshot status of the "
        f"complaints stored: {report['snapshot_status']}, of which "
        f"{report['snapshot_completed_later']} were taken `pending` (customer-api slower than 0.5 s) and completed "
        "later.",
        "",
        slice_table(intake, INTAKE_P99_TARGET_MS),
        "",
        activity_table(intake),
        "",
        stall_table(intake, INTAKE_P99_TARGET_MS),
        "",
        "Stages of one complaint, measured one at a time with no other load (median / p90 ms):",
        "",
        "| stage | median ms | p90 ms |",
        "| --- | ---: | ---: |",
    ]
    for key, label in (
        ("probe_customer", "customer-api `GET /v1/customers/{id}` (the look-up complaint-api makes)"),
        ("probe_suggest", "complaint-api `GET /v1/kb/search?q=<subject + description>&limit=3` (≈ the suggestion)"),
        ("intake_serial", "complaint-api `POST /v1/complaints`, whole request"),
    ):
        r = phases[key].result
        out.append(f"| {label} | {ms(r.p50_ms)} | {ms(r.p90_ms)} |")
    out += [
        "",
        f"### 2. Knowledge-base search, `GET /v1/kb/search` ({report['kb']['total']:,} published articles)",
        "",
        f"- Loaded {report['kb']['created']:,} generated articles through `POST /v1/kb/articles` (8 concurrent) in "
        f"{report['kb']['seconds']:.1f} s ({report['kb']['per_s']:.0f} articles/s); bodies "
        f"{report['kb']['body_chars_min']}–{report['kb']['body_chars_max']} characters (median "
        f"{report['kb']['body_chars_median']:.0f}), {len(report['kb']['categories'])} categories.",
        f"- **Cold search** (first search after the load: rebuilds the in-memory index): "
        f"**{report['cold_search_ms']:,.0f} ms**; the next search {report['second_search_ms']:.1f} ms.",
        f"- Query list: {len(SEARCH_QUERIES)} queries (simplified, traditional, English, mixed), random order.",
        "",
        LOAD_HEADER,
        load_row(
            f"**open loop {args.search_rate:g} req/s**, {args.search_seconds:g} s after {args.search_warmup:g} s "
            "warm-up",
            search,
            verdict(search.result.p99_ms, SEARCH_P99_TARGET_MS, search.result.errors),
        ),
        load_row("one at a time, no other load (service time, information)", phases["search_serial"], "information"),
        "",
        f"Generator: sends behind schedule p99 {search.result.send_lag_p99_ms:.1f} ms, max "
        f"{search.result.send_lag_max_ms:.1f} ms; {search.result.over_target} of {search.result.requests:,} "
        f"requests took longer than {SEARCH_P99_TARGET_MS:.0f} ms.",
        "",
        slice_table(search, SEARCH_P99_TARGET_MS),
        "",
        activity_table(search),
        "",
        stall_table(search, SEARCH_P99_TARGET_MS),
        "",
        "### CPU",
        "",
        f"For reference: one full garbage collection in a fresh process with complaint-api's modules, app and "
        f"jieba dictionary loaded takes {report['gc_probe'].get('full_gc_ms', float('nan')):.0f} ms "
        f"({report['gc_probe'].get('tracked_objects', 0):,} tracked objects); the event loop stands still "
        "meanwhile.",
        "",
        cpu_table(
            [
                (f"intake, open loop {args.intake_rate:g} req/s", intake),
                (f"intake, closed loop {args.closed_clients} clients", phases["intake_closed"]),
                (f"search, open loop {args.search_rate:g} req/s", search),
            ]
        ),
    ]
    for key, title in (("intake", "Profile of complaint-api under intake load"), ("search", "Profile under search")):
        profile = report["profiles"].get(key)
        if profile:
            out += ["", profile_table(title, profile["buckets"], profile["samples"], profile["cpu_ms_per_req"])]
            out.append(
                "\npy-spy samples the process 100 times a second (blocking, with native frames) during a repeat of "
                "the phase's open-loop load; a sample counts where the thread is running or runnable. ms per "
                "request = share × complaint-api's CPU ms per request in the measured window."
            )
            out.append(f"\nCollapsed stacks: `bench/results/{profile['file']}`.")
    return "\n".join(out)


# ================================================================================================= main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--pg",
        default=os.environ.get("CRM_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="admin URL of the PostgreSQL server the throw-away databases are created on",
    )
    parser.add_argument("--keep-db", action="store_true", help="do not drop the databases afterwards")
    parser.add_argument("--customers", type=int, default=200, help="customers to seed (default 200)")
    parser.add_argument("--intake-rate", type=float, default=100, help="open-loop complaints/s (default 100)")
    parser.add_argument("--intake-seconds", type=float, default=60, help="measured intake window (default 60)")
    parser.add_argument("--intake-warmup", type=float, default=10, help="intake warm-up seconds (default 10)")
    parser.add_argument("--closed-clients", type=int, default=16, help="closed-loop clients (default 16)")
    parser.add_argument("--closed-seconds", type=float, default=15, help="closed-loop window (default 15)")
    parser.add_argument("--closed-warmup", type=float, default=3, help="closed-loop warm-up (default 3)")
    parser.add_argument("--probe-seconds", type=float, default=4, help="each one-at-a-time probe (default 4)")
    parser.add_argument("--kb-articles", type=int, default=1000, help="published articles for search (default 1000)")
    parser.add_argument("--search-rate", type=float, default=50, help="open-loop searches/s (default 50)")
    parser.add_argument("--search-seconds", type=float, default=30, help="measured search window (default 30)")
    parser.add_argument("--search-warmup", type=float, default=5, help="search warm-up seconds (default 5)")
    parser.add_argument("--connections", type=int, default=64, help="open-loop connection pool (default 64)")
    parser.add_argument(
        "--profile",
        type=float,
        default=10,
        metavar="SECONDS",
        help="when a target is missed, repeat that phase under py-spy for SECONDS (0: never; default 10)",
    )
    parser.add_argument("--profile-always", action="store_true", help="profile both phases even if targets are met")
    parser.add_argument(
        "--diagnostic-rates",
        default="50,75",
        help="when intake misses its target, also run these open-loop rates for 15 s each ('' to skip)",
    )
    parser.add_argument("--seed", type=int, default=20261123, help="random seed of the generated data")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the servers are stopped and the databases dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    started = time.monotonic()
    rng = random.Random(args.seed)
    pg_version = pg(args.pg, "SELECT 1")
    report: dict[str, Any] = {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(pg_version),
        "command": command_line(),
        "revision": git_revision("services", "libs"),
        "args": vars(args),
        "results_file": f"complaint-api-{stamp}.json",
        "profiles": {},
    }
    phases: dict[str, Phase] = {}
    sampler = CpuSampler()

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="complaint-bench-")))
        urls = stack.enter_context(throwaway_databases(args.pg, ["customer", "complaint"], args.keep_db))
        sampler.databases = [urlsplit(u).path.lstrip("/") for u in urls.values()]
        complaint_db = urlsplit(urls["complaint"]).path.lstrip("/")
        customer_env = service_env(urls["customer"], workdir / "customer-data")
        complaint_env = service_env(
            urls["complaint"], workdir / "complaint-data", COMPLAINT_API_CUSTOMER_API_URL="http://127.0.0.1:0"
        )
        customer_api = stack.enter_context(serve("customer-api", customer_env, workdir))
        complaint_env["COMPLAINT_API_CUSTOMER_API_URL"] = customer_api.url
        complaint_api = stack.enter_context(serve("complaint-api", complaint_env, workdir))
        pool = stack.enter_context(ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")))
        loadgen_pid = pool.submit(os.getpid).result()
        sampler.pids = {"complaint-api": complaint_api.process.pid, "customer-api": customer_api.process.pid}
        sampler.pids["loadgen"] = loadgen_pid
        sampler.pids["bench"] = os.getpid()
        sampler.start()
        stack.callback(sampler.stop)

        # ---------------------------------------------------------------------------------- 1. intake
        customer_ids = seed_customers(customer_api, args.customers, rng)
        report["customers"] = len(customer_ids)
        report["seed_kb"] = seed_starter_kb(complaint_env, workdir)
        report["kb_before_intake"] = len(
            pg(urls["complaint"], "SELECT id FROM kb_articles WHERE status = 'published'", fetch=True)
        )
        n_intake = round((args.intake_warmup + args.intake_seconds) * args.intake_rate)
        bodies = [json.dumps(complaint_body(customer_ids, rng), ensure_ascii=False).encode() for _ in range(n_intake)]
        intake_spec = LoadSpec(
            complaint_api.url,
            "POST",
            ["/v1/complaints"],
            bodies,
            "open",
            warmup_s=args.intake_warmup,
            duration_s=args.intake_seconds,
            rate=args.intake_rate,
            concurrency=args.connections,
        )
        log(f"intake: open loop {args.intake_rate:g}/s, {args.intake_warmup:g} s warm-up + {args.intake_seconds:g} s")
        phases["intake_open"] = measured(
            pool,
            sampler,
            "intake open loop",
            intake_spec,
            201,
            target_ms=INTAKE_P99_TARGET_MS,
            activity=(args.pg, complaint_db),
        )
        report["snapshot_status"] = dict(
            pg(urls["complaint"], "SELECT snapshot_status, count(*) FROM complaints GROUP BY 1", fetch=True)
        )
        # A complaint taken while customer-api did not answer within 0.5 s is stored `pending` and completed
        # by the background sweep later, which moves its updated_at.
        report["snapshot_completed_later"] = pg(
            urls["complaint"],
            "SELECT count(*) FROM complaints WHERE updated_at > created_at + interval '1 second'",
            fetch=True,
        )[0][0]

        probes = {
            "probe_customer": LoadSpec(
                customer_api.url,
                "GET",
                [f"/v1/customers/{rng.choice(customer_ids)}" for _ in range(500)],
                None,
                "closed",
                warmup_s=0.5,
                duration_s=args.probe_seconds,
            ),
            "probe_suggest": LoadSpec(
                complaint_api.url,
                "GET",
                [
                    search_path(f"{b['subject']} {b['description']}", limit=3)
                    for b in (complaint_body(customer_ids, rng) for _ in range(500))
                ],
                None,
                "closed",
                warmup_s=0.5,
                duration_s=args.probe_seconds,
            ),
            "intake_serial": LoadSpec(
                complaint_api.url,
                "POST",
                ["/v1/complaints"],
                bodies,
                "closed",
                warmup_s=0.5,
                duration_s=args.probe_seconds,
            ),
        }
        for key, spec in probes.items():
            phases[key] = measured(pool, sampler, key, spec, 201 if spec.method == "POST" else 200, slice_s=1e9)

        closed_spec = LoadSpec(
            complaint_api.url,
            "POST",
            ["/v1/complaints"],
            bodies,
            "closed",
            warmup_s=args.closed_warmup,
            duration_s=args.closed_seconds,
            concurrency=args.closed_clients,
        )
        log(f"intake: closed loop, {args.closed_clients} clients, {args.closed_seconds:g} s")
        phases["intake_closed"] = measured(pool, sampler, "intake closed loop", closed_spec, 201, slice_s=5)

        intake_missed = (
            phases["intake_open"].result.p99_ms >= INTAKE_P99_TARGET_MS or phases["intake_open"].result.errors
        )
        if args.profile > 0 and (intake_missed or args.profile_always):
            log(f"intake: profiling complaint-api with py-spy for {args.profile:g} s under the same open-loop load")
            file_name = f"complaint-api-{stamp}-intake-profile.txt"
            spec = LoadSpec(**{**asdict(intake_spec), "warmup_s": 3.0, "duration_s": args.profile + 3})
            buckets, samples, _ = profile_run(
                pool, spec, complaint_api.process.pid, args.profile, RESULTS_DIR / file_name
            )
            report["profiles"]["intake"] = {
                "file": file_name,
                "buckets": buckets,
                "samples": samples,
                "cpu_ms_per_req": phases["intake_open"].cpu_shares.get("complaint-api_ms_per_req"),
            }

        rates = [float(r) for r in args.diagnostic_rates.split(",") if r.strip()]
        if intake_missed or args.profile_always:
            for rate in rates:
                log(f"intake: diagnostic open loop at {rate:g} req/s for 15 s")
                spec = LoadSpec(**{**asdict(intake_spec), "rate": rate, "warmup_s": 3.0, "duration_s": 15.0})
                phases[f"intake_rate_{rate:g}"] = measured(
                    pool,
                    sampler,
                    f"intake open loop {rate:g}/s",
                    spec,
                    201,
                    target_ms=INTAKE_P99_TARGET_MS,
                    slice_s=15,
                    activity=(args.pg, complaint_db),
                )

        # ------------------------------------------------------------------------------ 2. KB search
        report["kb"] = load_kb(complaint_api, args.kb_articles, rng)
        query = rng.choice(SEARCH_QUERIES)
        report["cold_search_ms"], first = timed_get(complaint_api.url, search_path(query))
        report["second_search_ms"], _ = timed_get(complaint_api.url, search_path(rng.choice(SEARCH_QUERIES)))
        report["cold_search_query"] = query
        report["cold_search_hits"] = len(first["items"])
        log(f"cold search ({query}): {report['cold_search_ms']:.0f} ms; next {report['second_search_ms']:.1f} ms")
        n_search = round((args.search_warmup + args.search_seconds) * args.search_rate)
        search_paths = [search_path(rng.choice(SEARCH_QUERIES)) for _ in range(n_search)]
        search_spec = LoadSpec(
            complaint_api.url,
            "GET",
            search_paths,
            None,
            "open",
            warmup_s=args.search_warmup,
            duration_s=args.search_seconds,
            rate=args.search_rate,
            concurrency=args.connections,
        )
        log(f"search: open loop {args.search_rate:g}/s, {args.search_warmup:g} s warm-up + {args.search_seconds:g} s")
        phases["search_open"] = measured(
            pool,
            sampler,
            "search open loop",
            search_spec,
            200,
            target_ms=SEARCH_P99_TARGET_MS,
            slice_s=5,
            activity=(args.pg, complaint_db),
        )
        serial_spec = LoadSpec(**{**asdict(search_spec), "mode": "closed", "warmup_s": 0.5})
        serial_spec.duration_s = args.probe_seconds
        serial_spec.concurrency = 1
        phases["search_serial"] = measured(pool, sampler, "search one at a time", serial_spec, 200, slice_s=1e9)
        hits = Counter(len(timed_get(complaint_api.url, search_path(q))[1]["items"]) > 0 for q in SEARCH_QUERIES)
        report["queries_with_hits"] = f"{hits[True]} of {len(SEARCH_QUERIES)}"

        search_missed = (
            phases["search_open"].result.p99_ms >= SEARCH_P99_TARGET_MS or phases["search_open"].result.errors
        )
        if args.profile > 0 and (search_missed or args.profile_always):
            log(f"search: profiling complaint-api with py-spy for {args.profile:g} s under the same open-loop load")
            file_name = f"complaint-api-{stamp}-search-profile.txt"
            spec = LoadSpec(**{**asdict(search_spec), "warmup_s": 3.0, "duration_s": args.profile + 3})
            buckets, samples, _ = profile_run(
                pool, spec, complaint_api.process.pid, args.profile, RESULTS_DIR / file_name
            )
            report["profiles"]["search"] = {
                "file": file_name,
                "buckets": buckets,
                "samples": samples,
                "cpu_ms_per_req": phases["search_open"].cpu_shares.get("complaint-api_ms_per_req"),
            }
        report["gc_probe"] = gc_probe(workdir)
        report["server_log_tails"] = {
            "customer-api": log_tail(customer_api.log_path, 20),
            "complaint-api": log_tail(complaint_api.log_path, 20),
        }

    report["total_seconds"] = round(time.monotonic() - started, 1)
    report["phases"] = {key: {**asdict(phase.result), "cpu_shares": phase.cpu_shares} for key, phase in phases.items()}
    (RESULTS_DIR / report["results_file"]).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(render(report, phases, args))
    log(f"done in {report['total_seconds']:.0f} s; raw figures in bench/results/{report['results_file']}")


if __name__ == "__main__":
    main()
