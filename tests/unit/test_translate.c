/*
 * OpenAI Chat <-> Anthropic Messages translation: requests, answers,
 * streams and errors, compared as whole JSON documents or exact bytes.
 * JSON in this file is written with ' for " and turned back by q().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxy/translate.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static arena_t *arena;
static translate_request_t req;

static int arena_setup(void **state)
{
    arena = arena_new(4096);
    return 0;
}

static int arena_teardown(void **state)
{
    arena_free(arena);
    arena = NULL;
    return 0;
}

/* text with every ' turned into ", in arena memory. */
static const char *q(const char *text)
{
    char *s = arena_strdup(arena, text);

    for (char *p = s; *p != '\0'; p++)
        if (*p == '\'')
            *p = '"';
    return s;
}

/* Both sides parsed and compared as JSON values. */
static void expect_json(const char *actual, const char *expected)
{
    struct json_object *a = json_tokener_parse(actual);
    struct json_object *e = json_tokener_parse(q(expected));
    bool same;

    if (e == NULL)
        fail_msg("expected text is not JSON: %s", q(expected));
    same = a != NULL && json_object_equal(a, e);
    if (!same)
        print_error("actual:   %s\nexpected: %s\n", actual, q(expected));
    json_object_put(a);
    json_object_put(e);
    assert_true(same);
}

static int translate_default(const char *chat, int64_t default_max)
{
    struct json_object *obj = json_tokener_parse(q(chat));
    translate_request_opts_t opts = {"claude-sonnet-4-5", default_max};
    int rc;

    assert_non_null(obj);
    rc = translate_request_to_anthropic(arena, obj, &opts, &req);
    json_object_put(obj);
    return rc;
}

static int translate(const char *chat)
{
    return translate_default(chat, 1024);
}

static void expect_request(const char *chat, const char *anthropic)
{
    int rc = translate(chat);

    if (rc != 0)
        print_error("refused: %s\n", req.message);
    assert_int_equal(rc, 0);
    expect_json(req.body, anthropic);
}

static void expect_refused(const char *chat, const char *param,
                           const char *words)
{
    assert_int_equal(translate(chat), -EINVAL);
    assert_null(req.body);
    assert_non_null(req.message);
    if (strstr(req.message, words) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", req.message, words);
    if (param == NULL)
        assert_null(req.param);
    else
        assert_string_equal(req.param, param);
}

#define HI "{'role':'user','content':'Hi'}"

/* ---- requests ---------------------------------------------------------- */

static void test_request_plain_exact_text(void **state)
{
    assert_int_equal(translate("{'model':'gpt-4o','messages':[{'role':'system',"
                               "'content':'Be brief.'}," HI
                               "],'temperature':0.70}"),
                     0);
    assert_string_equal(req.body,
                        q("{'model':'claude-sonnet-4-5','max_tokens':1024,"
                          "'system':'Be brief.','messages':[" HI "],"
                          "'temperature':0.70}"));
    assert_int_equal(req.body_len, strlen(req.body));
    assert_int_equal(req.max_tokens, 1024);
    assert_false(req.stream);
    assert_false(req.include_usage);
}

static void test_request_several_system_messages_become_blocks(void **state)
{
    expect_request(
        "{'messages':[{'role':'system','content':'A'},"
        "{'role':'developer','content':[{'type':'text','text':'B'},"
        "{'type':'text','text':'C','cache_control':{'type':'ephemeral'}}]}," HI
        ",{'role':'system','content':'late'}]}",
        "{'model':'claude-sonnet-4-5','max_tokens':1024,'system':["
        "{'type':'text','text':'A'},{'type':'text','text':'B'},"
        "{'type':'text','text':'C','cache_control':{'type':'ephemeral'}},"
        "{'type':'text','text':'late'}],'messages':[" HI "]}");
}

static void test_request_cached_system_part_stays_a_block(void **state)
{
    expect_request("{'messages':[{'role':'system','content':[{'type':'text',"
                   "'text':'Long rules','cache_control':{'type':'ephemeral',"
                   "'ttl':'1h'}}]}," HI "]}",
                   "{'model':'claude-sonnet-4-5','max_tokens':1024,'system':["
                   "{'type':'text','text':'Long rules','cache_control':"
                   "{'type':'ephemeral','ttl':'1h'}}],'messages':[" HI "]}");
}

static void test_request_blank_system_is_left_out(void **state)
{
    expect_request("{'messages':[{'role':'system','content':'  \\n'}," HI "]}",
                   "{'model':'claude-sonnet-4-5','max_tokens':1024,"
                   "'messages':[" HI "]}");
    expect_refused("{'messages':[{'role':'system','content':[{'type':"
                   "'image_url','image_url':{'url':'https://x/y.png'}}]}," HI
                   "]}",
                   "messages[0]", "only text parts");
}

static void test_request_multipart_content_and_images(void **state)
{
    expect_request(
        "{'messages':[{'role':'user','content':["
        "{'type':'text','text':'What is this?'},"
        "{'type':'image_url','image_url':{'url':"
        "'data:image/png;base64,iVBORw0KGgo=','detail':'high'}},"
        "{'type':'image_url','image_url':{'url':'https://e.com/cat.jpg'}},"
        "{'type':'image_url','image_url':'data:image/jpg;base64,/9j/4A=='},"
        "{'type':'text','text':' '}]}]}",
        "{'model':'claude-sonnet-4-5','max_tokens':1024,'messages':["
        "{'role':'user','content':[{'type':'text','text':'What is this?'},"
        "{'type':'image','source':{'type':'base64','media_type':"
        "'image/png','data':'iVBORw0KGgo='}},"
        "{'type':'image','source':{'type':'url','url':"
        "'https://e.com/cat.jpg'}},"
        "{'type':'image','source':{'type':'base64','media_type':"
        "'image/jpeg','data':'/9j/4A=='}}]}]}");
}

static void test_request_refuses_images_it_cannot_send(void **state)
{
    static const char *const urls[][2] = {
        {"data:image/bmp;base64,Qk0=", "image type \"image/bmp\""},
        {"data:image/png,rawbytes", "must be base64"},
        {"ftp://e.com/a.png", "http(s)"},
    };
    char chat[512];

    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        snprintf(chat, sizeof(chat),
                 "{'messages':[{'role':'user','content':[{'type':"
                 "'image_url','image_url':{'url':'%s'}}]}]}",
                 urls[i][0]);
        expect_refused(chat, "messages[0]", urls[i][1]);
    }
    expect_refused("{'messages':[" HI ",{'role':'assistant','content':["
                   "{'type':'image_url','image_url':{'url':'https://e/a'}}"
                   "]}]}",
                   "messages[1]", "only in user and tool messages");
    expect_refused("{'messages':[{'role':'user','content':[{'type':"
                   "'input_audio','input_audio':{'data':'AA==','format':"
                   "'wav'}}]}]}",
                   "messages[0]", "\"input_audio\" are not supported");
}

#define WEATHER_CALLS                                                          \
    "{'role':'assistant','content':null,'tool_calls':["                        \
    "{'id':'call_1','type':'function','function':{'name':'get_weather',"       \
    "'arguments':'{\\'city\\':\\'Paris\\'}'}},"                                \
    "{'id':'call_2','type':'function','function':{'name':'get_weather',"       \
    "'arguments':' {\\'city\\': \\'Rome\\'} '}}]}"

static void test_request_tool_round_trip(void **state)
{
    expect_request(
        "{'messages':[{'role':'user','content':'Weather in Paris and "
        "Rome?'}," WEATHER_CALLS ","
        "{'role':'tool','tool_call_id':'call_1','content':'18C'},"
        "{'role':'tool','tool_call_id':'call_2','content':[{'type':'text',"
        "'text':'21C'}]},"
        "{'role':'user','content':'Which is warmer?'}]}",
        "{'model':'claude-sonnet-4-5','max_tokens':1024,'messages':["
        "{'role':'user','content':'Weather in Paris and Rome?'},"
        "{'role':'assistant','content':["
        "{'type':'tool_use','id':'call_1','name':'get_weather',"
        "'input':{'city':'Paris'}},"
        "{'type':'tool_use','id':'call_2','name':'get_weather',"
        "'input':{'city':'Rome'}}]},"
        "{'role':'user','content':["
        "{'type':'tool_result','tool_use_id':'call_1','content':'18C'},"
        "{'type':'tool_result','tool_use_id':'call_2','content':'21C'},"
        "{'type':'text','text':'Which is warmer?'}]}]}");
}

static void test_request_tool_call_with_text_and_empty_arguments(void **state)
{
    expect_request(
        "{'messages':[" HI ",{'role':'assistant','content':'Checking.',"
        "'tool_calls':[{'id':'c9','type':'function','function':{'name':"
        "'now','arguments':''}}]},{'role':'tool','tool_call_id':'c9',"
        "'content':null}]}",
        "{'model':'claude-sonnet-4-5','max_tokens':1024,'messages':[" HI ","
        "{'role':'assistant','content':[{'type':'text','text':'Checking.'},"
        "{'type':'tool_use','id':'c9','name':'now','input':{}}]},"
        "{'role':'user','content':[{'type':'tool_result',"
        "'tool_use_id':'c9'}]}]}");
}

static void test_request_merges_consecutive_roles(void **state)
{
    expect_request(
        "{'messages':[{'role':'user','content':'a'},"
        "{'role':'user','content':[{'type':'text','text':'b'}]},"
        "{'role':'assistant','content':'c'},"
        "{'role':'assistant','content':[{'type':'refusal','refusal':'d'}]},"
        "{'role':'user','content':'e'},{'role':'assistant','content':''},"
        "{'role':'user','content':'f'}]}",
        "{'model':'claude-sonnet-4-5','max_tokens':1024,'messages':["
        "{'role':'user','content':[{'type':'text','text':'a'},"
        "{'type':'text','text':'b'}]},"
        "{'role':'assistant','content':[{'type':'text','text':'c'},"
        "{'type':'text','text':'d'}]},"
        "{'role':'user','content':[{'type':'text','text':'e'},"
        "{'type':'text','text':'f'}]}]}");
}

static void test_request_max_tokens_defaults_and_limits(void **state)
{
    assert_int_equal(translate("{'messages':[" HI "]}"), 0);
    assert_int_equal(req.max_tokens, 1024);
    expect_request("{'messages':[" HI "],'max_tokens':300}",
                   "{'model':'claude-sonnet-4-5','max_tokens':300,"
                   "'messages':[" HI "]}");
    assert_int_equal(req.max_tokens, 300);
    expect_request("{'messages':[" HI "],'max_tokens':300,"
                   "'max_completion_tokens':200}",
                   "{'model':'claude-sonnet-4-5','max_tokens':200,"
                   "'messages':[" HI "]}");
    expect_request("{'messages':[" HI "],'max_tokens':null,"
                   "'max_completion_tokens':null}",
                   "{'model':'claude-sonnet-4-5','max_tokens':1024,"
                   "'messages':[" HI "]}");
    expect_refused("{'messages':[" HI "],'max_tokens':0}", "max_tokens",
                   "positive integer");
    expect_refused("{'messages':[" HI "],'max_completion_tokens':1.5}",
                   "max_completion_tokens", "positive integer");
    assert_int_equal(translate_default("{'messages':[" HI "]}", 0), -EINVAL);
    assert_string_equal(req.message, "max_tokens is required for this model");
}

static void test_request_stop_strings(void **state)
{
    expect_request("{'messages':[" HI "],'stop':'END'}",
                   "{'model':'claude-sonnet-4-5','max_tokens':1024,"
                   "'messages':[" HI "],'stop_sequences':['END']}");
    expect_request("{'messages':[" HI "],'stop':['a','','b \\n']}",
                   "{'model':'claude-sonnet-4-5','max_tokens':1024,"
                   "'messages':[" HI "],'stop_sequences':['a','b \\n']}");
    expect_request("{'messages':[" HI "],'stop':''}",
                   "{'model':'claude-sonnet-4-5','max_tokens':1024,"
                   "'messages':[" HI "]}");
    expect_refused("{'messages':[" HI "],'stop':['\\n']}", "stop",
                   "only of whitespace");
    expect_refused("{'messages':[" HI "],'stop':[7]}", "stop",
                   "array of strings");
}

static void test_request_sampling_user_and_stream(void **state)
{
    expect_request(
        "{'messages':[" HI "],'temperature':0.70,'top_p':1,'user':'u-1',"
        "'stream':true,'stream_options':{'include_usage':true},'seed':4,"
        "'presence_penalty':0.5,'logprobs':false,'n':1,"
        "'response_format':{'type':'text'}}",
        "{'model':'claude-sonnet-4-5','max_tokens':1024,'messages':[" HI "],"
        "'temperature':0.70,'metadata':{'user_id':'u-1'},"
        "'stream':true}");
    assert_true(req.stream);
    assert_true(req.include_usage);
    assert_non_null(strstr(req.body, "\"temperature\":0.70"));

    expect_request("{'messages':[" HI "],'metadata':{'user':'m-1','task':"
                   "'x'},'user':'u-1','stream':true,'top_p':0.9}",
                   "{'model':'claude-sonnet-4-5','max_tokens':1024,"
                   "'messages':[" HI "],'top_p':0.9,'metadata':{'user_id':"
                   "'m-1'},'stream':true}");
    assert_true(req.stream);
    assert_false(req.include_usage);
}

static void test_request_tools_and_parameters(void **state)
{
    expect_request(
        "{'messages':[" HI "],'tools':[{'type':'function','function':{"
        "'name':'get_weather','description':'Weather now','parameters':{"
        "'type':'object','properties':{'city':{'type':'string'}},"
        "'required':['city']},'strict':true}},"
        "{'type':'function','function':{'name':'now'}}]}",
        "{'model':'claude-sonnet-4-5','max_tokens':1024,'messages':[" HI "],"
        "'tools':[{'name':'get_weather','description':'Weather now',"
        "'input_schema':{'type':'object','properties':{'city':"
        "{'type':'string'}},'required':['city']}},"
        "{'name':'now','input_schema':{'type':'object','properties':{}}}]}");
}

static void test_request_tool_choice_mapping(void **state)
{
    static const char *const cases[][2] = {
        {"'auto'", "{'type':'auto'}"},
        {"'none'", "{'type':'none'}"},
        {"'required'", "{'type':'any'}"},
        {"{'type':'function','function':{'name':'now'}}",
         "{'type':'tool','name':'now'}"},
        {"'auto','parallel_tool_calls':false",
         "{'type':'auto','disable_parallel_tool_use':true}"},
        {"null,'parallel_tool_calls':false",
         "{'type':'auto','disable_parallel_tool_use':true}"},
        {"'required','parallel_tool_calls':false",
         "{'type':'any','disable_parallel_tool_use':true}"},
    };
    char chat[512], want[512];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(chat, sizeof(chat),
                 "{'messages':[" HI "],'tools':[{'type':'function',"
                 "'function':{'name':'now'}}],'tool_choice':%s}",
                 cases[i][0]);
        snprintf(want, sizeof(want),
                 "{'model':'claude-sonnet-4-5','max_tokens':1024,"
                 "'messages':[" HI "],'tools':[{'name':'now','input_schema':"
                 "{'type':'object','properties':{}}}],'tool_choice':%s}",
                 cases[i][1]);
        expect_request(chat, want);
    }
    expect_request("{'messages':[" HI "],'tools':[],'tool_choice':'none'}",
                   "{'model':'claude-sonnet-4-5','max_tokens':1024,"
                   "'messages':[" HI "]}");
}

static void test_request_refuses_bad_tools(void **state)
{
    expect_refused("{'messages':[" HI "],'tool_choice':'required'}",
                   "tool_choice", "needs tools");
    expect_refused("{'messages':[" HI "],'tools':[{'type':'function',"
                   "'function':{'name':'now'}}],'tool_choice':'sometimes'}",
                   "tool_choice", "must be auto, none, required");
    expect_refused("{'messages':[" HI "],'tools':[{'type':'function',"
                   "'function':{'name':'now'}},{'type':'custom','custom':"
                   "{'name':'x'}}]}",
                   "tools[1]", "only tools of type function");
    expect_refused("{'messages':[" HI "],'tools':[{'type':'function',"
                   "'function':{'name':'now','parameters':'none'}}]}",
                   "tools[0]", "JSON Schema object");
}

static void test_request_tolerates_explicit_nulls(void **state)
{
    expect_request(
        "{'model':'gpt-4o','messages':[{'role':'system','content':null},"
        "{'role':'user','content':'Hi','name':null},"
        "{'role':'assistant','content':'Hello','tool_calls':null},"
        "{'role':'user','content':'Bye'}],'tools':null,'tool_choice':null,"
        "'stop':null,'temperature':null,'top_p':null,'n':null,"
        "'logprobs':null,'top_logprobs':null,'response_format':null,"
        "'max_tokens':null,'stream':null,'stream_options':null,'user':null,"
        "'metadata':null,'functions':null,'audio':null,'modalities':null,"
        "'parallel_tool_calls':null}",
        "{'model':'claude-sonnet-4-5','max_tokens':1024,'messages':["
        "{'role':'user','content':'Hi'},{'role':'assistant',"
        "'content':'Hello'},{'role':'user','content':'Bye'}]}");
}

static void test_request_refuses_what_anthropic_cannot_do(void **state)
{
    static const char *const cases[][3] = {
        {"'n':2", "n", "n must be 1"},
        {"'logprobs':true", "logprobs", "logprobs"},
        {"'top_logprobs':3", "top_logprobs", "not supported"},
        {"'response_format':{'type':'json_schema','json_schema':{'name':"
         "'x','schema':{}}}",
         "response_format", "ask for JSON in the prompt"},
        {"'response_format':{'type':'json_object'}", "response_format",
         "response_format"},
        {"'modalities':['text','audio']", "modalities", "audio output"},
        {"'functions':[{'name':'f'}]", "functions", "not supported"},
        {"'web_search_options':{}", "web_search_options", "not supported"},
        {"'temperature':1.5", "temperature", "between 0 and 1"},
        {"'top_p':-0.1", "top_p", "between 0 and 1"},
        {"'stream':'yes'", "stream", "true or false"},
        {"'temperature':0.5,'top_p':0.9", "top_p", "send only one"},
    };
    char chat[512];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(chat, sizeof(chat), "{'messages':[" HI "],%s}", cases[i][0]);
        expect_refused(chat, cases[i][1], cases[i][2]);
    }
}

static void test_request_refuses_bad_messages(void **state)
{
    static const char *const cases[][3] = {
        {"[" HI ",{'role':'assistant','tool_calls':[{'id':'c1','type':"
         "'function','function':{'name':'f','arguments':'{oops'}}]}]",
         "messages[1]", "tool call \"f\" are not a JSON object"},
        {"[" HI ",{'role':'assistant','tool_calls':[{'id':'c1','type':"
         "'function','function':{'name':'f','arguments':'[1]'}}]}]",
         "messages[1]", "not a JSON object"},
        {"[{'role':'function','name':'f','content':'x'}]", "messages[0]",
         "role \"function\" is not supported"},
        {"[{'content':'x'}]", "messages[0]", "needs a role"},
        {"['hello']", "messages[0]", "is not an object"},
        {"[]", "messages", "must not be empty"},
        {"[{'role':'system','content':'Only rules'}]", "messages",
         "at least one user message"},
        {"[{'role':'user','content':'  '}]", "messages",
         "at least one user message"},
        {"[{'role':'assistant','content':'Hello'}," HI "]", "messages",
         "first message"},
        {"[" HI ",{'role':'tool','tool_call_id':'zz','content':'1'}]",
         "messages", "\"zz\" must come right after"},
        {"[" HI "," WEATHER_CALLS "]", "messages",
         "\"call_1\" has no tool message"},
        {"[" HI ",{'role':'tool','content':'1'}]", "messages[1]",
         "needs a tool_call_id"},
        {"[{'role':'user','content':7}]", "messages[0]",
         "string or an array of parts"},
    };
    char chat[1024];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(chat, sizeof(chat), "{'messages':%s}", cases[i][0]);
        expect_refused(chat, cases[i][1], cases[i][2]);
    }
    expect_refused("{'model':'x'}", "messages", "must be an array");
}

static void test_request_leaves_the_callers_tree_unchanged(void **state)
{
    const char *text = q("{'messages':[{'role':'system','content':'S'},"
                         "{'role':'user','content':[{'type':'text','text':"
                         "'Hi'}]},{'role':'user','content':'again'}],"
                         "'temperature':0.5,'tools':[{'type':'function',"
                         "'function':{'name':'now','parameters':{'type':"
                         "'object'}}}]}");
    struct json_object *chat = json_tokener_parse(text);
    translate_request_opts_t opts = {"claude-haiku-4-5", 64};
    char *before = arena_strdup(arena, json_object_to_json_string(chat));

    assert_int_equal(translate_request_to_anthropic(arena, chat, &opts, &req),
                     0);
    assert_string_equal(json_object_to_json_string(chat), before);
    json_object_put(chat);
}

/* ---- answers ----------------------------------------------------------- */

static translate_answer_t answer;

static int translate_answer(const char *text)
{
    translate_reply_opts_t opts = {"gpt-4o", 1767225600, false};
    const char *body = q(text);

    return translate_answer_to_openai(arena, body, strlen(body), &opts,
                                      &answer);
}

static void expect_answer(const char *anthropic, const char *openai)
{
    assert_int_equal(translate_answer(anthropic), 0);
    assert_int_equal(answer.body_len, strlen(answer.body));
    expect_json(answer.body, openai);
}

#define ANSWER_HEAD                                                            \
    "{'id':'msg_01','type':'message','role':'assistant',"                      \
    "'model':'claude-sonnet-4-5-20250929',"

#define OPENAI_HEAD                                                            \
    "{'id':'chatcmpl-msg_01','object':'chat.completion',"                      \
    "'created':1767225600,'model':'gpt-4o',"

/* BUG-01: Anthropic's three input counters are disjoint; OpenAI's
 * prompt_tokens holds them all, reads and writes as subsets. */
static void test_answer_usage_sums_cache_counters(void **state)
{
    expect_answer(
        ANSWER_HEAD "'content':[{'type':'text','text':'Hello'},"
                    "{'type':'text','text':' world'}],'stop_reason':"
                    "'end_turn','stop_sequence':null,'usage':{"
                    "'input_tokens':20,'cache_creation_input_tokens':10000,"
                    "'cache_read_input_tokens':30000,'output_tokens':400}}",
        OPENAI_HEAD "'choices':[{'index':0,'message':{'role':'assistant',"
                    "'content':'Hello world','refusal':null},"
                    "'logprobs':null,'finish_reason':'stop'}],"
                    "'usage':{'prompt_tokens':40020,'completion_tokens':400,"
                    "'total_tokens':40420,'prompt_tokens_details':{"
                    "'cached_tokens':30000,'cache_write_tokens':10000}}}");
    assert_string_equal(answer.provider_model, "claude-sonnet-4-5-20250929");
    assert_true(answer.usage.present);
    assert_int_equal(answer.usage.input_tokens, 40020);
    assert_int_equal(answer.usage.cached_tokens, 30000);
    assert_int_equal(answer.usage.cache_write_tokens, 10000);
    assert_int_equal(answer.usage.output_tokens, 400);
    assert_int_equal(answer.usage.reasoning_tokens, 0);
}

static void test_answer_tool_use_and_thinking(void **state)
{
    expect_answer(
        ANSWER_HEAD
        "'content':[{'type':'thinking','thinking':'hmm','signature':'s'},"
        "{'type':'text','text':'Let me check.'},"
        "{'type':'tool_use','id':'toolu_1','name':'get_weather',"
        "'input':{'city':'Paris'}},"
        "{'type':'tool_use','id':'toolu_2','name':'now','input':{}}],"
        "'stop_reason':'tool_use','usage':{'input_tokens':100,"
        "'output_tokens':50,'output_tokens_details':{'thinking_tokens':30},"
        "'cache_creation':{'ephemeral_5m_input_tokens':0,"
        "'ephemeral_1h_input_tokens':0}}}",
        OPENAI_HEAD
        "'choices':[{'index':0,'message':{'role':'assistant',"
        "'content':'Let me check.','tool_calls':["
        "{'id':'toolu_1','type':'function','function':{'name':"
        "'get_weather','arguments':'{\\'city\\':\\'Paris\\'}'}},"
        "{'id':'toolu_2','type':'function','function':{'name':'now',"
        "'arguments':'{}'}}],'refusal':null},'logprobs':null,"
        "'finish_reason':'tool_calls'}],'usage':{'prompt_tokens':100,"
        "'completion_tokens':50,'total_tokens':150,'prompt_tokens_details':"
        "{'cached_tokens':0,'cache_write_tokens':0},"
        "'completion_tokens_details':{'reasoning_tokens':30}}}");
    assert_int_equal(answer.usage.reasoning_tokens, 30);
    assert_int_equal(answer.usage.output_tokens, 50);
}

static void test_answer_tool_calls_alone_have_null_content(void **state)
{
    expect_answer(
        ANSWER_HEAD "'content':[{'type':'tool_use','id':'t','name':'f',"
                    "'input':{'a':[1,2]}}],'stop_reason':'tool_use',"
                    "'usage':{'input_tokens':1,'output_tokens':2}}",
        OPENAI_HEAD "'choices':[{'index':0,'message':{'role':'assistant',"
                    "'content':null,'tool_calls':[{'id':'t','type':"
                    "'function','function':{'name':'f','arguments':"
                    "'{\\'a\\':[1,2]}'}}],'refusal':null},'logprobs':null,"
                    "'finish_reason':'tool_calls'}],'usage':{"
                    "'prompt_tokens':1,'completion_tokens':2,"
                    "'total_tokens':3,'prompt_tokens_details':{"
                    "'cached_tokens':0,'cache_write_tokens':0}}}");
}

static void test_answer_every_finish_reason(void **state)
{
    static const char *const cases[][2] = {
        {"'end_turn'", "stop"},
        {"'stop_sequence'", "stop"},
        {"'max_tokens'", "length"},
        {"'tool_use'", "tool_calls"},
        {"'refusal'", "content_filter"},
        {"'pause_turn'", "stop"},
        {"'model_context_window_exceeded'", "length"},
        {"null", "stop"},
    };
    char text[512];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct json_object *obj, *choice, *finish;

        snprintf(text, sizeof(text),
                 ANSWER_HEAD "'content':[],'stop_reason':%s,'usage':{"
                             "'input_tokens':1,'output_tokens':1}}",
                 cases[i][0]);
        assert_int_equal(translate_answer(text), 0);
        obj = json_tokener_parse(answer.body);
        json_object_object_get_ex(obj, "choices", &choice);
        choice = json_object_array_get_idx(choice, 0);
        json_object_object_get_ex(choice, "finish_reason", &finish);
        assert_string_equal(json_object_get_string(finish), cases[i][1]);
        json_object_put(obj);
    }
}

static void test_answer_usage_details(void **state)
{
    assert_int_equal(
        translate_answer(ANSWER_HEAD
                         "'content':[{'type':'text','text':'x'}],"
                         "'stop_reason':'end_turn','usage':{'input_tokens':"
                         "500,'cache_creation_input_tokens':6000,"
                         "'cache_creation':{'ephemeral_5m_input_tokens':2000,"
                         "'ephemeral_1h_input_tokens':4000},"
                         "'cache_read_input_tokens':null,'output_tokens':1000,"
                         "'server_tool_use':{'web_search_requests':2},"
                         "'service_tier':'priority','inference_geo':'us'}}"),
        0);
    assert_int_equal(answer.usage.input_tokens, 6500);
    assert_int_equal(answer.usage.cache_write_tokens, 6000);
    assert_int_equal(answer.usage.cache_write_1h_tokens, 4000);
    assert_int_equal(answer.usage.cached_tokens, 0);
    assert_int_equal(answer.usage.web_searches, 2);
    assert_int_equal(answer.usage.service_tier, SERVICE_PRIORITY);
    assert_string_equal(answer.usage.geo, "us");
}

static void test_answer_without_usage_is_not_priced_at_zero(void **state)
{
    expect_answer(ANSWER_HEAD "'content':[{'type':'text','text':'x'}],"
                              "'stop_reason':'end_turn'}",
                  OPENAI_HEAD "'choices':[{'index':0,'message':{'role':"
                              "'assistant','content':'x','refusal':null},"
                              "'logprobs':null,'finish_reason':'stop'}]}");
    assert_false(answer.usage.present);
}

static void test_answer_refuses_what_is_not_a_message(void **state)
{
    static const char *const bodies[] = {
        "not json",
        "{}",
        "{'type':'error','error':{'type':'api_error','message':'x'}}",
        "{'type':'message','content':'text'} trailing",
        "",
    };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        assert_int_equal(translate_answer(bodies[i]), -EINVAL);
        assert_null(answer.body);
        assert_false(answer.usage.present);
    }
}

/* ---- streams ----------------------------------------------------------- */

typedef struct sse {
    const char *name;
    const char *data;
} sse_t;

static translate_stream_t stream;
static buf_t out;

static void stream_start(bool include_usage)
{
    translate_reply_opts_t opts = {"gpt-4o", 1767225600, include_usage};

    translate_stream_init(&stream, arena, &opts);
    buf_init(&out, 1 << 20);
}

static void feed_all(const sse_t *events, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *data = q(events[i].data);

        assert_int_equal(translate_stream_feed(&stream, events[i].name, data,
                                               strlen(data), &out),
                         0);
    }
}

static void expect_out(const char *expected)
{
    const char *want = q(expected);

    if (out.len != strlen(want) || memcmp(out.data, want, out.len) != 0)
        print_error("actual:\n%.*s\nexpected:\n%s\n", (int)out.len,
                    out.data ? out.data : "", want);
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, out.len);
}

/* V14 of the research note, with a ping and an unknown event added. */
static const sse_t text_stream[] = {
    {"message_start",
     "{'type':'message_start','message':{'id':'msg_01','type':'message',"
     "'role':'assistant','model':'claude-haiku-4-5-20251001','content':[],"
     "'stop_reason':null,'stop_sequence':null,'usage':{'input_tokens':472,"
     "'cache_creation_input_tokens':0,'cache_read_input_tokens':12000,"
     "'output_tokens':1,'service_tier':'standard'}}}"},
    {"content_block_start", "{'type':'content_block_start','index':0,"
                            "'content_block':{'type':'text','text':''}}"},
    {"ping", "{'type':'ping'}"},
    {"content_block_delta", "{'type':'content_block_delta','index':0,"
                            "'delta':{'type':'text_delta','text':'Sure'}}"},
    {"message_delta", "{'type':'message_delta','delta':{'stop_reason':null,"
                      "'stop_sequence':null},'usage':{'output_tokens':120}}"},
    {"content_block_stop", "{'type':'content_block_stop','index':0}"},
    {"fallback", "{'type':'fallback','anything':1}"},
    {"message_delta", "{'type':'message_delta','delta':{'stop_reason':"
                      "'end_turn','stop_sequence':null},'usage':"
                      "{'output_tokens':350}}"},
    {"message_stop", "{'type':'message_stop'}"},
};

#define N_TEXT_STREAM (sizeof(text_stream) / sizeof(text_stream[0]))

#define CHUNK(id)                                                              \
    "data: {'id':'chatcmpl-" id "','object':'chat.completion.chunk',"          \
    "'created':1767225600,'model':'gpt-4o',"

#define DELTA(delta, finish)                                                   \
    "'choices':[{'index':0,'delta':" delta ",'logprobs':null,"                 \
    "'finish_reason':" finish "}]"

static void test_stream_text_answer_exact_bytes(void **state)
{
    usage_t usage;

    stream_start(false);
    feed_all(text_stream, N_TEXT_STREAM);
    expect_out(CHUNK("msg_01") DELTA("{'role':'assistant','content':''}",
                                     "null") "}\n\n" CHUNK("msg_01")
                   DELTA("{'content':'Sure'}", "null") "}\n\n" CHUNK("msg_01")
                       DELTA("{}", "'stop'") "}\n\n"
                                             "data: [DONE]\n\n");
    assert_true(translate_stream_ended_ok(&stream));
    assert_string_equal(translate_stream_provider_model(&stream),
                        "claude-haiku-4-5-20251001");

    translate_stream_usage(&stream, &usage);
    assert_true(usage.present);
    assert_int_equal(usage.input_tokens, 12472);
    assert_int_equal(usage.cached_tokens, 12000);
    assert_int_equal(usage.cache_write_tokens, 0);
    assert_int_equal(usage.output_tokens, 350);
    buf_free(&out);
}

static void test_stream_usage_chunk_only_when_asked(void **state)
{
    stream_start(true);
    feed_all(text_stream, N_TEXT_STREAM);
    expect_out(
        CHUNK("msg_01") DELTA("{'role':'assistant','content':''}",
                              "null") ",'usage':null}\n\n" CHUNK("msg_01")
            DELTA("{'content':'Sure'}",
                  "null") ",'usage':null}\n\n" CHUNK("msg_01")
                DELTA("{}", "'stop'") ",'usage':null}\n\n" CHUNK(
                    "msg_01") "'choices':[],'usage':{'prompt_tokens':12472,"
                              "'completion_tokens':350,'total_tokens':12822,"
                              "'prompt_tokens_details':{'cached_tokens':12000,"
                              "'cache_write_tokens':0}}}\n\n"
                              "data: [DONE]\n\n");
    assert_true(translate_stream_ended_ok(&stream));
    buf_free(&out);
}

static void test_stream_tool_call_exact_bytes(void **state)
{
    static const sse_t events[] = {
        {"message_start",
         "{'type':'message_start','message':{'id':'msg_02','model':"
         "'claude-sonnet-4-5','usage':{'input_tokens':50,"
         "'output_tokens':1}}}"},
        {"content_block_start",
         "{'type':'content_block_start','index':0,'content_block':{"
         "'type':'thinking','thinking':''}}"},
        {"content_block_delta",
         "{'type':'content_block_delta','index':0,'delta':{'type':"
         "'thinking_delta','thinking':'Paris?'}}"},
        {"content_block_delta",
         "{'type':'content_block_delta','index':0,'delta':{'type':"
         "'signature_delta','signature':'abc'}}"},
        {"content_block_stop", "{'type':'content_block_stop','index':0}"},
        {"content_block_start",
         "{'type':'content_block_start','index':1,'content_block':{"
         "'type':'text','text':''}}"},
        {"content_block_delta",
         "{'type':'content_block_delta','index':1,'delta':{'type':"
         "'text_delta','text':'Checking.'}}"},
        {"content_block_stop", "{'type':'content_block_stop','index':1}"},
        {"content_block_start",
         "{'type':'content_block_start','index':2,'content_block':{"
         "'type':'tool_use','id':'toolu_9','name':'get_weather',"
         "'input':{}}}"},
        {"content_block_delta",
         "{'type':'content_block_delta','index':2,'delta':{'type':"
         "'input_json_delta','partial_json':''}}"},
        {"content_block_delta",
         "{'type':'content_block_delta','index':2,'delta':{'type':"
         "'input_json_delta','partial_json':'{\\'city\\':'}}"},
        {"content_block_delta",
         "{'type':'content_block_delta','index':2,'delta':{'type':"
         "'input_json_delta','partial_json':' \\'Paris\\'}'}}"},
        {"content_block_stop", "{'type':'content_block_stop','index':2}"},
        {"content_block_start",
         "{'type':'content_block_start','index':3,'content_block':{"
         "'type':'tool_use','id':'toolu_10','name':'now','input':{}}}"},
        {"content_block_stop", "{'type':'content_block_stop','index':3}"},
        {"message_delta",
         "{'type':'message_delta','delta':{'stop_reason':'tool_use'},"
         "'usage':{'output_tokens':40,'output_tokens_details':"
         "{'thinking_tokens':12}}}"},
        {"message_stop", "{'type':'message_stop'}"},
    };
    usage_t usage;

    stream_start(false);
    feed_all(events, sizeof(events) / sizeof(events[0]));
    expect_out(
        CHUNK("msg_02") DELTA("{'role':'assistant','content':''}",
                              "null") "}\n\n" CHUNK("msg_02")
            DELTA("{'content':'Checking.'}", "null") "}\n\n" CHUNK("msg_02")
                DELTA("{'tool_calls':[{'index':0,'id':'toolu_9',"
                      "'type':'function','function':{'name':"
                      "'get_weather','arguments':''}}]}",
                      "null") "}\n\n" CHUNK("msg_02")
                    DELTA("{'tool_calls':[{'index':0,'function':{"
                          "'arguments':'{\\'city\\':'}}]}",
                          "null") "}\n\n" CHUNK("msg_02")
                        DELTA("{'tool_calls':[{'index':0,'function':{"
                              "'arguments':' \\'Paris\\'}'}}]}",
                              "null") "}\n\n" CHUNK("msg_02")
                            DELTA("{'tool_calls':[{'index':1,'id':'toolu_10',"
                                  "'type':'function','function':{'name':'now',"
                                  "'arguments':''}}]}",
                                  "null") "}\n\n" CHUNK("msg_02")
                                DELTA("{}", "'tool_calls'") "}\n\n"
                                                            "data: [DONE]\n\n");

    translate_stream_usage(&stream, &usage);
    assert_int_equal(usage.input_tokens, 50);
    assert_int_equal(usage.output_tokens, 40);
    assert_int_equal(usage.reasoning_tokens, 12);
    buf_free(&out);
}

static void test_stream_error_event_ends_without_done(void **state)
{
    static const sse_t events[] = {
        {"message_start", "{'type':'message_start','message':{'id':'msg_03',"
                          "'usage':{'input_tokens':9,'output_tokens':1}}}"},
        {"content_block_delta",
         "{'type':'content_block_delta','index':0,'delta':{'type':"
         "'text_delta','text':'Hel'}}"},
        {"error", "{'type':'error','error':{'type':'overloaded_error',"
                  "'message':'Overloaded'}}"},
        {"message_stop", "{'type':'message_stop'}"},
    };
    usage_t usage;

    stream_start(true);
    feed_all(events, sizeof(events) / sizeof(events[0]));
    expect_out(CHUNK("msg_03")
                   DELTA("{'role':'assistant','content':''}",
                         "null") ",'usage':null}\n\n" CHUNK("msg_03")
                       DELTA("{'content':'Hel'}",
                             "null") ",'usage':null}\n\n"
                                     "data: "
                                     "{'error':{'message':'Overloaded','type':'"
                                     "server_error',"
                                     "'code':'overloaded'}}\n\n");
    assert_false(translate_stream_ended_ok(&stream));
    translate_stream_usage(&stream, &usage);
    assert_true(usage.present);
    assert_int_equal(usage.input_tokens, 9);
    buf_free(&out);
}

static void test_stream_uses_data_type_without_event_names(void **state)
{
    stream_start(false);
    for (size_t i = 0; i < N_TEXT_STREAM; i++) {
        const char *data = q(text_stream[i].data);

        assert_int_equal(translate_stream_feed(&stream, i % 2 ? NULL : "", data,
                                               strlen(data), &out),
                         0);
    }
    assert_true(translate_stream_ended_ok(&stream));
    assert_non_null(strstr(out.data, "data: [DONE]\n\n"));
    buf_free(&out);
}

/* Server tools grow input during the turn: message_delta repeats the
 * counters, cumulative, and each replaces the value before. */
static void test_stream_usage_is_replaced_never_summed(void **state)
{
    static const sse_t events[] = {
        {"message_start", "{'type':'message_start','message':{'id':'m',"
                          "'usage':{'input_tokens':100,"
                          "'cache_read_input_tokens':50,"
                          "'cache_creation_input_tokens':7,"
                          "'cache_creation':{'ephemeral_1h_input_tokens':7},"
                          "'output_tokens':1}}}"},
        {"message_delta", "{'type':'message_delta','delta':{},'usage':{"
                          "'input_tokens':600,'output_tokens':30,"
                          "'server_tool_use':{'web_search_requests':1}}}"},
        {"message_delta", "{'type':'message_delta','delta':{'stop_reason':"
                          "'end_turn'},'usage':{'input_tokens':900,"
                          "'output_tokens':90,'server_tool_use':"
                          "{'web_search_requests':2}}}"},
    };
    usage_t usage;

    stream_start(false);
    feed_all(events, sizeof(events) / sizeof(events[0]));
    assert_false(translate_stream_ended_ok(&stream));
    translate_stream_usage(&stream, &usage);
    assert_int_equal(usage.input_tokens, 957);
    assert_int_equal(usage.cached_tokens, 50);
    assert_int_equal(usage.cache_write_tokens, 7);
    assert_int_equal(usage.cache_write_1h_tokens, 7);
    assert_int_equal(usage.output_tokens, 90);
    assert_int_equal(usage.web_searches, 2);
    buf_free(&out);
}

static void test_stream_unreadable_event_ends_with_error(void **state)
{
    const char *bad = "{not json";

    stream_start(false);
    assert_int_equal(translate_stream_feed(&stream, "content_block_delta", bad,
                                           strlen(bad), &out),
                     -EPROTO);
    expect_out("data: {'error':{'message':'the provider sent a stream event "
               "that could not be read','type':'server_error','code':"
               "'bad_upstream_event'}}\n\n");
    assert_false(translate_stream_ended_ok(&stream));
    assert_int_equal(translate_stream_feed(&stream, "ping", "{}", 2, &out), 0);
    assert_int_equal(out.len, strlen(q("data: {'error':{'message':'the "
                                       "provider sent a stream event that "
                                       "could not be read','type':"
                                       "'server_error','code':"
                                       "'bad_upstream_event'}}\n\n")));
    buf_free(&out);
}

static void test_stream_full_buffer_appends_nothing(void **state)
{
    const char *data = q(text_stream[0].data);
    usage_t usage;

    stream_start(false);
    buf_free(&out);
    buf_init(&out, 16);
    assert_int_equal(translate_stream_feed(&stream, "message_start", data,
                                           strlen(data), &out),
                     -ENOSPC);
    assert_int_equal(out.len, 0);
    translate_stream_usage(&stream, &usage);
    assert_false(usage.present);

    buf_free(&out);
    buf_init(&out, 1 << 20);
    feed_all(text_stream, N_TEXT_STREAM);
    assert_true(translate_stream_ended_ok(&stream));
    assert_int_equal(
        strncmp(out.data, q(CHUNK("msg_01")), strlen(q(CHUNK("msg_01")))), 0);
    buf_free(&out);
}

/* ---- errors ------------------------------------------------------------ */

static void test_errors_anthropic_to_openai(void **state)
{
    static const struct {
        int status;
        const char *type;
        int want_status;
        const char *want_type;
        const char *want_code;
    } cases[] = {
        {400, "invalid_request_error", 400, "invalid_request_error", "null"},
        {401, "authentication_error", 401, "authentication_error",
         "'invalid_api_key'"},
        {402, "billing_error", 402, "billing_error", "null"},
        {403, "permission_error", 403, "permission_error", "null"},
        {404, "not_found_error", 404, "invalid_request_error", "'not_found'"},
        {413, "request_too_large", 413, "invalid_request_error",
         "'request_too_large'"},
        {429, "rate_limit_error", 429, "rate_limit_error",
         "'rate_limit_exceeded'"},
        {500, "api_error", 500, "server_error", "null"},
        {504, "timeout_error", 504, "server_error", "'timeout'"},
        {529, "overloaded_error", 503, "server_error", "'overloaded'"},
        {418, "teapot_error", 418, "invalid_request_error", "null"},
        {502, "new_error", 502, "server_error", "null"},
    };
    char body[256], want[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        translate_error_t err;
        const char *text;

        snprintf(body, sizeof(body),
                 "{'type':'error','error':{'type':'%s','message':'Why %d'},"
                 "'request_id':'req_1'}",
                 cases[i].type, cases[i].status);
        text = q(body);
        translate_error_to_openai(arena, cases[i].status, text, strlen(text),
                                  &err);
        assert_int_equal(err.status, cases[i].want_status);
        snprintf(want, sizeof(want),
                 "{'error':{'message':'Why %d','type':'%s','param':null,"
                 "'code':%s}}",
                 cases[i].status, cases[i].want_type, cases[i].want_code);
        expect_json(err.body, want);
    }
}

static void test_errors_unreadable_and_spend_cap(void **state)
{
    const char *html = "<html>Bad Gateway</html>";
    const char *cap = q("{'type':'error','error':{'type':'rate_limit_error',"
                        "'message':'Spend limit reached','details':{"
                        "'error_code':'enforced_spend_limit_reached'}}}");
    translate_error_t err;

    translate_error_to_openai(arena, 529, html, strlen(html), &err);
    assert_int_equal(err.status, 503);
    expect_json(err.body, "{'error':{'message':'the provider answered with "
                          "status 529','type':'server_error','param':null,"
                          "'code':'overloaded'}}");

    translate_error_to_openai(arena, 200, "", 0, &err);
    assert_int_equal(err.status, 502);

    translate_error_to_openai(arena, 429, cap, strlen(cap), &err);
    assert_int_equal(err.status, 429);
    expect_json(err.body, "{'error':{'message':'Spend limit reached','type':"
                          "'insufficient_quota','param':null,"
                          "'code':'insufficient_quota'}}");
}

static void test_errors_openai_to_anthropic(void **state)
{
    static const struct {
        int status;
        const char *type;
    } cases[] = {
        {400, "invalid_request_error"},
        {401, "authentication_error"},
        {402, "billing_error"},
        {403, "permission_error"},
        {404, "not_found_error"},
        {413, "request_too_large"},
        {429, "rate_limit_error"},
        {500, "api_error"},
        {502, "api_error"},
        {503, "overloaded_error"},
        {504, "timeout_error"},
        {529, "overloaded_error"},
        {409, "invalid_request_error"},
    };
    const char *body = q("{'error':{'message':'Budget exceeded','type':"
                         "'insufficient_quota','param':null,'code':"
                         "'budget_exceeded'}}");
    char want[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        translate_error_t err;

        translate_error_to_anthropic(arena, cases[i].status, body, strlen(body),
                                     &err);
        assert_int_equal(err.status, cases[i].status);
        snprintf(want, sizeof(want),
                 "{'type':'error','error':{'type':'%s','message':"
                 "'Budget exceeded'}}",
                 cases[i].type);
        expect_json(err.body, want);
    }
}

static void test_errors_written_by_tollgate(void **state)
{
    translate_error_t err;
    size_t len;
    char *text = translate_anthropic_error(arena, 404, "no model \"x\"", &len);

    assert_string_equal(text, q("{'type':'error','error':{'type':"
                                "'not_found_error','message':'no model "
                                "\\'x\\''}}"));
    assert_int_equal(len, strlen(text));

    text = translate_openai_error(arena, "over budget", "insufficient_quota",
                                  NULL, "budget_exceeded", &len);
    assert_string_equal(text, q("{'error':{'message':'over budget','type':"
                                "'insufficient_quota','param':null,'code':"
                                "'budget_exceeded'}}"));

    translate_error_to_anthropic(arena, 500, "garbage", 7, &err);
    expect_json(err.body, "{'type':'error','error':{'type':'api_error',"
                          "'message':'the request failed with status 500'}}");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, arena_setup, arena_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_request_plain_exact_text),
        T(test_request_several_system_messages_become_blocks),
        T(test_request_cached_system_part_stays_a_block),
        T(test_request_blank_system_is_left_out),
        T(test_request_multipart_content_and_images),
        T(test_request_refuses_images_it_cannot_send),
        T(test_request_tool_round_trip),
        T(test_request_tool_call_with_text_and_empty_arguments),
        T(test_request_merges_consecutive_roles),
        T(test_request_max_tokens_defaults_and_limits),
        T(test_request_stop_strings),
        T(test_request_sampling_user_and_stream),
        T(test_request_tools_and_parameters),
        T(test_request_tool_choice_mapping),
        T(test_request_refuses_bad_tools),
        T(test_request_tolerates_explicit_nulls),
        T(test_request_refuses_what_anthropic_cannot_do),
        T(test_request_refuses_bad_messages),
        T(test_request_leaves_the_callers_tree_unchanged),
        T(test_answer_usage_sums_cache_counters),
        T(test_answer_tool_use_and_thinking),
        T(test_answer_tool_calls_alone_have_null_content),
        T(test_answer_every_finish_reason),
        T(test_answer_usage_details),
        T(test_answer_without_usage_is_not_priced_at_zero),
        T(test_answer_refuses_what_is_not_a_message),
        T(test_stream_text_answer_exact_bytes),
        T(test_stream_usage_chunk_only_when_asked),
        T(test_stream_tool_call_exact_bytes),
        T(test_stream_error_event_ends_without_done),
        T(test_stream_uses_data_type_without_event_names),
        T(test_stream_usage_is_replaced_never_summed),
        T(test_stream_unreadable_event_ends_with_error),
        T(test_stream_full_buffer_appends_nothing),
        T(test_errors_anthropic_to_openai),
        T(test_errors_unreadable_and_spend_cap),
        T(test_errors_openai_to_anthropic),
        T(test_errors_written_by_tollgate),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
