"""The words of the 填报说明 sheet: one page on how a township fills in its 疑似监测对象
list and sends it back, over the parameters in force (the time limit, the date window).
"""

from __future__ import annotations

from screening.publish.columns import FEEDBACK_HEADERS, FEEDBACK_RESULTS, PublishMeta, keyed
from screening.publish.columns import verification_window as window
from screening.vocab import AWAITING_ANSWER, STATUS_CONFIRMED, STATUS_MONITORED


def guide_lines(township: str, meta: PublishMeta) -> list[tuple[str, str]]:
    result, date, note = FEEDBACK_HEADERS
    first, last = window(meta.period)
    limit = meta.params.verification_time_limit
    due = ""
    if meta.made is not None:
        from screening.rules.followup import due_date

        due = f"，即 {due_date(meta.made, meta.params).isoformat()} 前"
    awaiting = "「" + "」「".join(AWAITING_ANSWER) + "」"
    choices = "「" + "」「".join(FEEDBACK_RESULTS) + "」"
    return [
        ("乡镇", township),
        (
            "填写什么",
            f"在「疑似监测户」表最右三列（浅黄色表头）填写：{result}——从下拉列表选择{choices}；"
            f"{date}——入户核实的日期，写成 {first.isoformat()} 这样的年-月-日；"
            f"{note}——核实情况，「不予纳入」和「待核实」请写明原因。",
        ),
        (
            "哪些户要填",
            f"纳入状态为{awaiting}的户都要填写{result}，红、黄、蓝三色都一样；到期未反馈的户计入"
            f"县级的逾期统计。纳入状态为「{STATUS_MONITORED}」「{STATUS_CONFIRMED}」的户此前已有"
            "结论，可不填；如有新情况，请写在备注中。",
        ),
        ("反馈时限", f"名单生成后 {limit} 个工作日内反馈（周末和法定节假日不计）{due}。"),
        (
            "日期范围",
            f"{date}须在 {first.isoformat()} 至 {last.isoformat()} 之间，且不早于名单生成日期；"
            "表格不接受其他写法（如「10月12日」）。",
        ),
        (
            "不要改动",
            f"请勿插入、删除或移动行，勿修改户编号{'、核对码' if keyed(meta) else ''}和表头，"
            "勿合并单元格。本表已设保护"
            "（无密码），只有最右三列可以填写；如确需改动其他内容，请先与县级联系。",
        ),
        (
            "分村打印",
            "每个村从新的一页开始，末尾有本村小计和签字栏，可分村打印、分发到村。用 A4 纸打印。",
        ),
        ("签字盖章", "纸质台账由核实人、审核人、乡镇负责人签字，加盖乡镇公章后存档。"),
        (
            "发回县级",
            "填好后把本 xlsx 文件原样发回县级，不要另存为 CSV 或其他格式，也不要改文件名："
            "CSV 文件经 Excel 或 WPS 打开保存后，户编号、身份证号等长数字会被改写，"
            "往往无法导入，需要重新填写。",
        ),
        (
            "之后怎样",
            "确认纳入的户，按程序经村级评议公示（5个工作日）、乡镇审核、县级审定后录入监测系统；"
            "不予纳入的户此后不再列入，除非又出现新的部门风险记录；待核实的户下期继续列出。",
        ),
    ]
