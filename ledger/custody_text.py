"""The custody report's words, in Chinese (zh-CN, the default) and English.

Every label the report prints comes from here: headings, the five elements and their
sources, event kinds, the fields of an event's body, integrity classes. A kind or a
field this table does not know is shown under a generic label, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

LANGUAGES: Final = ("zh-CN", "en")

# (zh-CN, en)
TEXTS: Final[dict[str, tuple[str, str]]] = {
    "title": ("证据保管链报告", "Chain-of-custody report"),
    "station": ("采集站", "Collection station"),
    "station_name": ("采集站名称", "Station name"),
    "station_place": ("采集站地点", "Station place"),
    "station_id": ("采集站编号", "Station id"),
    "time_zone": ("时间均为当地时间", "Times are local time in"),
    "export": ("本次导出", "This export"),
    "exported_at": ("导出时间", "Exported at"),
    "exported_by": ("导出人", "Exported by"),
    "purpose": ("用途", "Purpose"),
    "checkpoint": ("签名检查点", "Signed checkpoint"),
    "checkpoint_value": ("账本大小 {size}（checkpoint.txt）", "tree size {size} (checkpoint.txt)"),
    "key": ("站点公钥", "Station key"),
    "fingerprint": ("公钥指纹 (SHA-256)", "Key fingerprint (SHA-256)"),
    "key_source": ("公钥来源", "Key source"),
    "key_source_value": (
        "随本包提供，未经固定：请与采集站公布的指纹核对，或以 --pubkey / --anchor 校验",
        "bundled in this package, not pinned: compare the fingerprint with the one the "
        "station published, or verify with --pubkey / --anchor",
    ),
    "case": ("案件", "Case"),
    "case_number": ("案件编号", "Case number"),
    "summary": ("概要", "Summary"),
    "clip_count": ("视音频记录数", "Records"),
    "total_duration": ("记录总时长", "Total recorded time"),
    "span": ("记录时段", "Recorded period"),
    "gaps": ("记录间断", "Gaps in coverage"),
    "no_gaps": ("各记录之间无间断", "none between the records"),
    "gap_row": ("{start} 至 {end}，共 {length}", "{start} to {end}, {length}"),
    "unknown_times": (
        "{n} 条记录的采集时间不明，未计入时段与间断",
        "{n} records have no capture time and are left out of the period and gaps",
    ),
    "incomplete": ("要素不全的记录", "Records missing an element"),
    "all_complete": ("全部记录五要素齐全", "every record has all five elements"),
    "hashes": ("证据文件与哈希值", "Evidence files and hashes"),
    "file": ("证据文件", "Evidence file"),
    "record": ("视音频记录", "Record"),
    "elements": ("五要素", "The five elements"),
    "element": ("要素", "Element"),
    "value": ("内容", "Value"),
    "source": ("来源", "Source"),
    "details": ("技术信息", "Technical details"),
    "events": ("保管链", "Custody events"),
    "event_leaf": ("账本序号", "Leaf"),
    "event_time": ("时间", "Time"),
    "event": ("事件", "Event"),
    "event_details": ("详情", "Details"),
    "verify": ("如何校验本证据包", "How to verify this package"),
    "signatures": ("签字", "Signatures"),
    "operator": ("导出操作员", "Operator"),
    "auditor": ("审核人", "Auditor"),
    "name": ("姓名", "Name"),
    "signature": ("签名", "Signature"),
    "date": ("日期", "Date"),
    "missing": ("缺失", "missing"),
    "as_recorded": ("原始记录", "as recorded"),
    "corrected": ("已按记录仪时钟偏差校正", "corrected by the recorder's clock offset"),
    "until": ("至", "until"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "verified": (
        "SHA-256、BLAKE3 一致，包含于签名检查点 {size}",
        "SHA-256 and BLAKE3 match; included in signed checkpoint {size}",
    ),
    "pages_note": ("每个案件另起一页。", "Each case starts on a new page."),
    "mark_privacy": ("隐私", "PRIVACY"),
    "mark_secret": ("涉密", "SECRET"),
    "banner_secret": (
        "本证据包含涉密视音频记录 {n} 条：仅限有权人员查阅，按涉密载体管理",
        "This package holds {n} SECRET record(s): for authorised persons only; handle it "
        "as secret material",
    ),
    "banner_privacy": (
        "本证据包含涉及个人隐私的视音频记录 {n} 条：仅限有权人员查阅",
        "This package holds {n} privacy-restricted record(s): for authorised persons only",
    ),
}

ELEMENT_LABELS: Final[dict[str, tuple[str, str]]] = {
    "case_number": ("案件编号", "Case number"),
    "capture_time": ("采集时间", "Capture time"),
    "capture_place": ("采集地点", "Capture place"),
    "collector": ("采集人", "Collector"),
    "object_of_proof": ("证明对象", "Object of proof"),
}

SOURCE_LABELS: Final[dict[str, tuple[str, str]]] = {
    "recorder": ("执法记录仪", "recorder"),
    "assignment": ("设备领用登记", "assignment"),
    "officer input": ("民警录入", "officer input"),
    "incident feed": ("警情数据", "incident feed"),
    "station default": ("采集站默认", "station default"),
}

EVENT_NAMES: Final[dict[str, tuple[str, str]]] = {
    "case.opened": ("立案登记", "case opened"),
    "case.changed": ("案件信息变更", "case changed"),
    "case.closed": ("结案", "case closed"),
    "case.linked": ("关联案件", "linked to case"),
    "case.unlinked": ("解除关联", "unlinked from case"),
    "clip.ingested": ("采集入库", "ingested"),
    "clip.redocked": ("再次接入", "seen again"),
    "clip.uploaded": ("上传中心存储", "uploaded"),
    "clip.accessed": ("调阅", "accessed"),
    "case.exported": ("导出", "exported"),
    "clip.purged": ("本地清除", "purged locally"),
    "docking.opened": ("接入采集站", "docked"),
    "docking.closed": ("采集结束", "docking closed"),
    "officer.assigned": ("设备领用登记", "recorder assigned"),
    "recorder.wiped": ("记录仪清除", "recorder wiped"),
    "access.refused": ("拒绝调阅", "access refused"),
    "clip.sensitivity_set": ("密级标定", "sensitivity marked"),
}
OTHER_EVENT: Final = ("其他事件", "other event")

FIELD_LABELS: Final[dict[str, tuple[str, str]]] = {
    "who": ("人员", "Who"),
    "purpose": ("用途", "Purpose"),
    "action": ("操作", "Action"),
    "via": ("途径", "Via"),
    "target": ("目标存储", "Storage target"),
    "location": ("存储位置", "Stored at"),
    "confirmed_size": ("确认大小（字节）", "Confirmed size (bytes)"),
    "officer": ("民警", "Officer"),
    "collector": ("采集人", "Collector"),
    "reason": ("原因", "Reason"),
    "case_number": ("案件编号", "Case number"),
    "object_of_proof": ("证明对象", "Object of proof"),
    "recorder": ("执法记录仪编号", "Recorder serial"),
    "recorder_model": ("记录仪型号", "Recorder model"),
    "volume": ("接入位置", "Mounted at"),
    "slot": ("接口", "Slot"),
    "session_id": ("接入会话", "Docking session"),
    "clips": ("记录数", "Records"),
    "problems": ("问题", "Problems"),
    "source_path": ("记录仪上的文件", "File on the recorder"),
    "size": ("大小（字节）", "Size (bytes)"),
    "out": ("导出目录", "Written to"),
    "valid_from": ("生效时间", "Valid from"),
    "set_by": ("登记人", "Set by"),
    "previous": ("原值", "Previously"),
    "subject": ("当事人", "Enforcement subject"),
    "whole_process": ("须全过程记录", "Whole-process recording required"),
    "starts": ("开始时间", "Starts"),
    "ends": ("结束时间", "Ends"),
    "by": ("操作人", "By"),
    "changes": ("变更内容", "Changes"),
    "case_number_typed": ("录入的案件编号", "Case number as typed"),
    "incident": ("警情", "Incident"),
    "source": ("来源", "Source"),
    "category": ("案件类别", "Category"),
    "unit": ("办案单位", "Unit"),
    "sensitivity": ("密级", "Sensitivity"),
    "retention": ("保存期限", "Retention"),
    "place_name": ("地点名称", "Place name"),
    "officer_source": ("采集人来源", "Collector from"),
    "integrity": ("完整性", "Integrity"),
}

# A key that means something else in one kind of event: (kind, key) -> label.
KIND_FIELD_LABELS: Final[dict[tuple[str, str], tuple[str, str]]] = {
    ("officer.assigned", "previous"): ("原领用人", "Previous officer"),
    ("clip.sensitivity_set", "previous"): ("原密级", "Previous sensitivity"),
    ("case.changed", "previous"): ("原值", "Previous values"),
}

VALUE_LABELS: Final[dict[str, tuple[str, str]]] = {
    "export": ("导出", "export"),
    "download": ("下载", "download"),
    "mark": ("标定密级", "mark"),
    "view": ("查看", "view"),
    "fetch": ("取出", "fetch"),
    "cli": ("命令行", "command line"),
    "api": ("管理接口", "API"),
    "kiosk": ("自助终端", "kiosk"),
    "assignment": ("设备领用登记", "assignment"),
    "device-info": ("记录仪设备信息", "recorder's device info"),
    "none": ("无", "none"),
    "tag": ("文件位置标签 (ISO 6709)", "the file's location tag (ISO 6709)"),
    "nmea-stream": ("文件内 GPS 轨迹 (NMEA)", "GPS track in the file (NMEA)"),
    "nmea-sidecar": ("同名 GPS 轨迹文件 (NMEA)", "GPS track file beside it (NMEA)"),
    "normal": ("普通", "normal"),
    "privacy": ("涉及隐私", "privacy-restricted"),
    "secret": ("涉密", "secret"),
}

INTEGRITY_LABELS: Final[dict[str, tuple[str, str]]] = {
    "ok": ("完整", "intact"),
    "truncated": ("文件截断", "truncated"),
    "undecodable": ("无法解码", "cannot be decoded"),
    "not_media": ("非音视频文件", "not audio or video"),
}

DETAIL_LABELS: Final[dict[str, tuple[str, str]]] = {
    "clip_id": ("记录编号", "Record id"),
    "original": ("原文件名", "Original file name"),
    "recorder": ("执法记录仪编号", "Recorder serial"),
    "recorder_clock": ("记录仪时钟", "Recorder clock"),
    "creation_time": ("文件内创建时间", "Creation time in the file"),
    "ingested_at": ("入库时间", "Ingested at"),
    "duration": ("时长", "Duration"),
    "codec": ("编码", "Codecs"),
    "resolution": ("分辨率", "Resolution"),
    "frame_rate": ("帧率", "Frame rate"),
    "place_from": ("位置来源", "Place taken from"),
    "recorder_serial": ("文件内记录仪序列号", "Recorder serial in the file"),
    "integrity": ("完整性", "Integrity"),
    "problem": ("读取问题", "Read problem"),
    "size": ("大小", "Size"),
    "verification": ("校验结果", "Verification result"),
}


@dataclass(frozen=True)
class Words:
    """The report's words in one language (zh-CN unless ``en``)."""

    language: str

    @property
    def _i(self) -> int:
        return 1 if self.language == "en" else 0

    def __call__(self, key: str, **values: object) -> str:
        text = TEXTS[key][self._i]
        return text.format(**values) if values else text

    @property
    def colon(self) -> str:
        return ": " if self.language == "en" else "："

    def element(self, name: str) -> str:
        return ELEMENT_LABELS[name][self._i]

    def source(self, source: str | None) -> str:
        if source is None:
            return self("missing")
        return SOURCE_LABELS.get(source, (source, source))[self._i]

    def event(self, kind: str) -> str:
        return EVENT_NAMES.get(kind, OTHER_EVENT)[self._i]

    def known_event(self, kind: str) -> bool:
        return kind in EVENT_NAMES

    def field(self, key: str, kind: str | None = None) -> str:
        """A body key's label; ``kind`` picks the label of a key whose sense depends on
        the event (``previous`` of an assignment is an officer, of a mark a level)."""
        if kind is not None and (kind, key) in KIND_FIELD_LABELS:
            return KIND_FIELD_LABELS[(kind, key)][self._i]
        return FIELD_LABELS.get(key, (key, key))[self._i]

    def value(self, text: str) -> str:
        return VALUE_LABELS.get(text, (text, text))[self._i]

    def integrity(self, value: str) -> str:
        return INTEGRITY_LABELS.get(value, (value, value))[self._i]

    def detail(self, key: str) -> str:
        return DETAIL_LABELS[key][self._i]


def words(language: str) -> Words:
    """The words of ``language``; anything but ``en`` reads as zh-CN, the default."""
    return Words("en" if language == "en" else "zh-CN")
