// Fills a generated XForm with records in JavaRosa (the XForms engine of ODK Collect,
// as bundled in pyxform's ODK_Validate.jar) and prints which answers it refuses.
//   java -cp ODK_Validate.jar:. Check FORM.xml < records.tsv
// records.tsv: "field<TAB>value" lines, a blank line after each record. Output: one line
// per record, "ok" or the refused answers "field:required|constraint|not_in_code_table".
import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.javarosa.core.model.Constants;
import org.javarosa.core.model.FormDef;
import org.javarosa.core.model.SelectChoice;
import org.javarosa.core.model.data.DateData;
import org.javarosa.core.model.data.DecimalData;
import org.javarosa.core.model.data.GeoPointData;
import org.javarosa.core.model.data.IAnswerData;
import org.javarosa.core.model.data.IntegerData;
import org.javarosa.core.model.data.SelectMultiData;
import org.javarosa.core.model.data.SelectOneData;
import org.javarosa.core.model.data.StringData;
import org.javarosa.core.model.data.helper.Selection;
import org.javarosa.core.model.instance.InstanceInitializationFactory;
import org.javarosa.core.model.utils.DateUtils;
import org.javarosa.form.api.FormEntryController;
import org.javarosa.form.api.FormEntryModel;
import org.javarosa.form.api.FormEntryPrompt;
import org.javarosa.xform.util.XFormUtils;

public class Check {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        Map<String, String> record = new LinkedHashMap<>();
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isEmpty()) {
                System.out.println(check(args[0], record));
                record = new LinkedHashMap<>();
            } else {
                int tab = line.indexOf('\t');
                record.put(line.substring(0, tab), line.substring(tab + 1));
            }
        }
        System.out.flush();
    }

    static String check(String path, Map<String, String> record) throws Exception {
        FormDef form = XFormUtils.getFormFromInputStream(new FileInputStream(path));
        form.initialize(true, new InstanceInitializationFactory());
        FormEntryModel model = new FormEntryModel(form);
        FormEntryController controller = new FormEntryController(model);
        // two passes, as Collect checks every answer again when the form is finalised:
        // the second sees every answer (a floor is compared with the total floors after it)
        List<String> refused = new ArrayList<>();
        for (int pass = 0; pass < 2; pass++) {
            refused.clear();
            controller.jumpToIndex(org.javarosa.core.model.FormIndex.createBeginningOfFormIndex());
            int event;
            while ((event = controller.stepToNextEvent()) != FormEntryController.EVENT_END_OF_FORM) {
                if (event != FormEntryController.EVENT_QUESTION) continue;
                FormEntryPrompt prompt = model.getQuestionPrompt();
                String name = prompt.getIndex().getReference().getNameLast();
                String value = record.get(name);
                IAnswerData answer = null;
                if (value != null && !value.isEmpty()) {
                    answer = answer(prompt, value);
                    if (answer == null) {
                        refused.add(name + ":not_in_code_table");
                        continue;
                    }
                }
                int status = controller.answerQuestion(prompt.getIndex(), answer, false);
                if (status == FormEntryController.ANSWER_REQUIRED_BUT_EMPTY) refused.add(name + ":required");
                else if (status == FormEntryController.ANSWER_CONSTRAINT_VIOLATED) refused.add(name + ":constraint");
            }
        }
        return refused.isEmpty() ? "ok" : String.join(" ", refused);
    }

    static IAnswerData answer(FormEntryPrompt prompt, String value) {
        switch (prompt.getDataType()) {
            case Constants.DATATYPE_INTEGER: return new IntegerData(Integer.parseInt(value));
            case Constants.DATATYPE_DECIMAL: return new DecimalData(Double.parseDouble(value));
            case Constants.DATATYPE_DATE: return new DateData(DateUtils.parseDate(value));
            case Constants.DATATYPE_GEOPOINT: {
                String[] parts = value.split(" ");
                return new GeoPointData(new double[] {Double.parseDouble(parts[0]), Double.parseDouble(parts[1]), 0, 0});
            }
            case Constants.DATATYPE_CHOICE: {
                for (SelectChoice choice : prompt.getSelectChoices())
                    if (choice.getValue().equals(value)) return new SelectOneData(choice.selection());
                return null;
            }
            case Constants.DATATYPE_CHOICE_LIST: {
                List<Selection> chosen = new ArrayList<>();
                for (String one : value.split(" ")) {
                    Selection found = null;
                    for (SelectChoice choice : prompt.getSelectChoices())
                        if (choice.getValue().equals(one)) found = choice.selection();
                    if (found == null) return null;
                    chosen.add(found);
                }
                return new SelectMultiData(chosen);
            }
            default: return new StringData(value);
        }
    }
}
